"""Every failure of the API as ``{"error": ..., "parameter": ...}`` JSON; never a traceback."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from callpulse.analytics import QueryError
from callpulse.store.errors import StoreUnavailable
from callpulse.web.api.params import HINTS
from callpulse.web.auth import AccessDenied


class ErrorBody(BaseModel):
    error: str = Field(description="what is wrong and how to fix it")
    parameter: str | None = Field(None, description="the query parameter at fault, if any")


def error_response(
    status: int,
    error: str,
    parameter: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=error, parameter=parameter)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


class NotFound(Exception):
    """A resource the path names does not exist (404 with this message)."""


async def _invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("query", "path")]
    parameter = location[0] if location else "request"
    hint = HINTS.get(parameter)
    if hint is None:
        message = f"{parameter}: {first.get('msg', 'invalid')}"
    else:  # the expected form in words of this API, not the validator's
        message = f"{parameter}: expected {hint}, got {_shown(first.get('input'))}"
    return error_response(400, message, parameter)


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


async def _unanswerable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QueryError)
    return error_response(400, f"{exc.parameter}: {exc}", exc.parameter)


async def _denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AccessDenied)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, exc.message, headers=headers)


def routing_error(request: Request, exc: HTTPException) -> JSONResponse:
    """An unknown path or a wrong method, said in words that point to the fix."""
    path = request.url.path
    message = exc.detail
    if exc.status_code == 404:
        api = path == "/api" or path.startswith("/api/")
        message = "no such endpoint: see /api/v1/openapi.json" if api else f"no such page: {path}"
    elif exc.status_code == 405 and exc.headers and "Allow" in exc.headers:
        message = f"{request.method} is not allowed on {path}: use {exc.headers['Allow']}"
    return error_response(exc.status_code, message, headers=exc.headers)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return routing_error(request, exc)


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, str(exc))


async def _unavailable(request: Request, exc: Exception) -> Response:
    return error_response(503, f"the database is unavailable, retry later: {exc}")


async def _internal(request: Request, exc: Exception) -> Response:
    # The server still logs the traceback (the exception goes on up); the client gets one line.
    return error_response(500, "internal error (details are in the server log)")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(QueryError, _unanswerable)
    app.add_exception_handler(AccessDenied, _denied)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(Exception, _internal)
