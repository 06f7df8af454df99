"""The emulator's HTTP face: the Compatibility REST API subset, and the ``/emulator`` endpoints.

Every API path works under ``/api/laml/2010-04-01`` and ``/2010-04-01``, with or without
``.json``; everything but ``/healthz`` needs HTTP Basic auth with the project id and API token.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callpulse.signalwire.emulator import catalog
from callpulse.signalwire.emulator.errors import (
    AUTH_FAILED,
    METHOD_NOT_ALLOWED,
    ApiError,
    invalid,
    not_found,
)
from callpulse.signalwire.emulator.filters import call_filters
from callpulse.signalwire.emulator.paging import PageRequest, paginate
from callpulse.signalwire.emulator.resources import (
    call_json,
    calls_path,
    number_json,
    number_path,
    number_settings,
)
from callpulse.signalwire.emulator.service import Emulator
from callpulse.web.body import read_limited

MAX_BODY_BYTES = 64 * 1024
PREFIXES = ("/api/laml/2010-04-01", "/2010-04-01")
Handler = Callable[[Request, Emulator], Awaitable[Response]]


def _base(request: Request) -> str:
    return next(p for p in PREFIXES if request.url.path.startswith(p + "/"))


def _sid(request: Request) -> str:
    return str(request.path_params["sid"]).removesuffix(".json")


def _authenticate(request: Request, emulator: Emulator) -> None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, password = "", ""
    config = emulator.config
    # "&", not "and": both secrets are compared every time.
    valid = hmac.compare_digest(user.encode(), config.project_id.encode()) & hmac.compare_digest(
        password.encode(), config.api_token.encode()
    )
    if scheme.lower() != "basic" or not valid:
        raise ApiError(401, AUTH_FAILED, "Authentication Error - invalid username or password")
    account = request.path_params.get("account_sid")
    if account is not None and account != config.project_id:
        raise ApiError(401, AUTH_FAILED, f"Authentication Error - no access to account {account}")


async def _params(request: Request) -> dict[str, str]:
    """Query parameters for GET; the form or JSON body otherwise (at most 64 KiB)."""
    if request.method == "GET":
        return dict(request.query_params)
    body, size = await read_limited(request, MAX_BODY_BYTES)
    if size > MAX_BODY_BYTES:
        raise invalid("body", f"is over {MAX_BODY_BYTES} bytes")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise invalid("body", "must be a JSON object of parameters")
        return {
            k: json.dumps(v) if isinstance(v, bool) else str(v)
            for k, v in data.items()
            if v is not None
        }
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _endpoint(handler: Handler, emulator: Emulator) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        _authenticate(request, emulator)
        return await handler(request, emulator)

    return endpoint


async def list_numbers(request: Request, emulator: Emulator) -> Response:
    query = dict(request.query_params)
    numbers = emulator.project.numbers()
    filters = [(name, query[name]) for name in ("PhoneNumber", "FriendlyName") if query.get(name)]
    for name, text in filters:
        if name == "PhoneNumber":  # the API matches any part of the number
            numbers = [n for n in numbers if text.lstrip("+") in n.phone_number]
        else:
            numbers = [n for n in numbers if n.setting("friendly_name") == text]
    account, base = emulator.config.project_id, _base(request)
    return JSONResponse(
        paginate(
            numbers,
            lambda n: (n.seq,),
            PageRequest.of(query),
            name="incoming_phone_numbers",
            path=number_path(base, account) + ".json",
            filters=filters,
            render=lambda n: number_json(n, account, base),
        )
    )


async def create_number(request: Request, emulator: Emulator) -> Response:
    params = await _params(request)
    settings = number_settings(params)
    project = emulator.project
    if params.get("PhoneNumber"):
        phone_number = catalog.e164(params["PhoneNumber"])
    elif params.get("AreaCode"):
        taken = {n.phone_number for n in project.numbers()}
        phone_number = catalog.free_number(emulator.rng, params["AreaCode"], taken)
    else:
        raise invalid("PhoneNumber", "or AreaCode is required")
    settings.setdefault("friendly_name", catalog.national(phone_number))
    number = project.add_number(phone_number, settings)
    return JSONResponse(number_json(number, project.project_id, _base(request)), status_code=201)


async def read_number(request: Request, emulator: Emulator) -> Response:
    number = emulator.project.number(_sid(request))
    return JSONResponse(number_json(number, emulator.config.project_id, _base(request)))


async def update_number(request: Request, emulator: Emulator) -> Response:
    settings = number_settings(await _params(request))
    number = emulator.project.update_number(_sid(request), settings)
    return JSONResponse(number_json(number, emulator.config.project_id, _base(request)))


async def delete_number(request: Request, emulator: Emulator) -> Response:
    emulator.project.remove_number(_sid(request))
    return Response(status_code=204)


async def list_calls(request: Request, emulator: Emulator) -> Response:
    query = dict(request.query_params)
    predicates, filters = call_filters(query)
    calls = [c for c in emulator.project.calls() if all(match(c) for match in predicates)]
    account, base = emulator.config.project_id, _base(request)
    return JSONResponse(
        paginate(
            calls,
            lambda c: c.sort_key,
            PageRequest.of(query),
            name="calls",
            path=calls_path(base, account) + ".json",
            filters=filters,
            render=lambda c: call_json(c, account, base),
        )
    )


async def read_call(request: Request, emulator: Emulator) -> Response:
    call = emulator.project.call(_sid(request))
    return JSONResponse(call_json(call, emulator.config.project_id, _base(request)))


async def place_call(request: Request, emulator: Emulator) -> Response:
    params = await _params(request)
    wait = params.get("Wait", "false").lower()
    if wait not in ("true", "false"):
        raise invalid("Wait", f"must be true or false, got {params['Wait']!r}")
    call, number = emulator.place(params)
    body: dict[str, Any] = call_json(call, emulator.config.project_id, PREFIXES[0])
    final = await emulator.fire(call, number, wait=wait == "true")
    if final is not None and wait == "true":
        body["callback"] = {
            "attempts": final.attempt,
            "status_code": final.status_code,
            "outcome": final.outcome,
        }
    return JSONResponse(body, status_code=201)


async def list_deliveries(request: Request, emulator: Emulator) -> Response:
    attempts = emulator.log.attempts(request.query_params.get("CallSid"))
    return JSONResponse({"deliveries": [a.as_json() for a in attempts]})


async def settings(request: Request, emulator: Emulator) -> Response:
    if request.method == "POST":
        params = await _params(request)
        if "DropShare" in params:
            emulator.set_drop_share(params["DropShare"])
    return JSONResponse({"drop_share": emulator.drop_share})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return not_found(request.url.path).response()
    # Routing raises only 404 and 405.
    return ApiError(exc.status_code, METHOD_NOT_ALLOWED, str(exc.detail)).response()


def create_app(emulator: Emulator) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await emulator.start()
        try:
            yield
        finally:
            await emulator.stop()

    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, _endpoint(handler, emulator), methods=methods)

    routes = [Route("/healthz", healthz)]
    for prefix in PREFIXES:
        account = f"{prefix}/Accounts/{{account_sid}}"
        for suffix in ("", ".json"):
            routes += [
                route(f"{account}/IncomingPhoneNumbers{suffix}", list_numbers, ["GET"]),
                route(f"{account}/IncomingPhoneNumbers{suffix}", create_number, ["POST"]),
                route(f"{account}/Calls{suffix}", list_calls, ["GET"]),
            ]
        routes += [
            route(f"{account}/IncomingPhoneNumbers/{{sid}}", read_number, ["GET"]),
            route(f"{account}/IncomingPhoneNumbers/{{sid}}", update_number, ["POST"]),
            route(f"{account}/IncomingPhoneNumbers/{{sid}}", delete_number, ["DELETE"]),
            route(f"{account}/Calls/{{sid}}", read_call, ["GET"]),
        ]
    routes += [
        route("/emulator/calls", place_call, ["POST"]),
        route("/emulator/deliveries", list_deliveries, ["GET"]),
        route("/emulator/settings", settings, ["GET", "POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.emulator = emulator
    return app
