"""The app's answers to routing failures and clients gone mid-body (bounded reads: body.py)."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from callpulse.web.api.errors import routing_error

log = logging.getLogger(__name__)


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
