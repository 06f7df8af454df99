"""Request bodies read within a limit: shared by the receiver, the log-in form and the emulator.

Its own module, importing nothing of the app, so whoever reads a body loads Starlette alone.
"""

from __future__ import annotations

from starlette.requests import Request


async def read_limited(request: Request, limit: int) -> tuple[bytes, int]:
    """The body, cut at ``limit + 1`` bytes, and its size (declared, or as far as read).

    Raises ClientDisconnect when the client goes away mid-body; ``client_gone`` answers it.
    """
    declared = request.headers.get("content-length", "")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break  # no need to read a body that will be refused
    body = b"".join(chunks)[: limit + 1]
    return body, max(size, int(declared)) if declared.isdigit() else size
