"""Request bodies read within a limit: shared by the receiver, the log-in form and the emulator.

Its own module, importing nothing of the app, so whoever reads a body loads Starlette alone.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive


async def receive_limited(receive: Receive, limit: int, declared: str) -> tuple[bytes, int]:
    """The body from ASGI messages, cut at ``limit + 1`` bytes, and its size (``declared``, the
    Content-Length, or as far as read).

    Raises ClientDisconnect when the client goes away mid-body; ``client_gone`` answers it.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or not message.get("more_body", False):
            break  # (past the limit: no need to read a body that will be refused)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return body[: limit + 1], max(size, int(declared)) if declared.isdigit() else size


async def read_limited(request: Request, limit: int) -> tuple[bytes, int]:
    """``receive_limited`` for a Starlette request."""
    return await receive_limited(request.receive, limit, request.headers.get("content-length", ""))
