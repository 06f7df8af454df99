"""HTTP helpers shared by the app's endpoints."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from callpulse.web.api.errors import routing_error

log = logging.getLogger(__name__)


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


async def http_error(request: Request, exc: Exception) -> Response:
    """Routing's own failures (unknown path, wrong method) as the API's ``{"error"}`` JSON."""
    assert isinstance(exc, HTTPException)
    return routing_error(request, exc)


async def client_gone(request: Request, exc: Exception) -> Response:
    """A client that left before its body was complete: nothing was handled, nobody listens for
    an answer, so one line instead of a traceback."""
    assert isinstance(exc, ClientDisconnect)
    client = request.client.host if request.client is not None else "?"
    log.warning("client %s left before its request body was complete: %s", client, request.url.path)
    return Response(status_code=400)
