"""HTTP helpers shared by the app's endpoints."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from callpulse.web.api.errors import error_response


async def http_error(request: Request, exc: Exception) -> Response:
    """Routing's own failures (unknown path, wrong method) as the API's ``{"error"}`` JSON."""
    assert isinstance(exc, HTTPException)
    message = f"no such page: {request.url.path}" if exc.status_code == 404 else exc.detail
    return error_response(exc.status_code, message, headers=exc.headers)
