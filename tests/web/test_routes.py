"""Every route of the app, asked without credentials on a server with a token: refused, unless it
is on the list of public ones below. A new route without a credentials check fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient

from callpulse.config import Settings

PUBLIC = {
    "/callbacks/call-status",  # the sender's endpoint: its signature is the credential
    "/healthz",
    "/readyz",
    "/metrics",  # operational metrics only, checked below
    "/login",
    "/logout",
    "/",  # the dashboard page: the log-in form until logged in
    "/api/v1/openapi.json",  # the API's description, public by design (README)
}


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every endpoint, into mounted apps; static files are public."""
    for route in routes:
        if isinstance(route, Mount):
            if isinstance(route.app, StaticFiles):
                continue
            yield from _routes(
                route.routes or getattr(route.app, "routes", []), prefix + route.path
            )
        elif isinstance(route, Route):
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield method, prefix + route.path


def test_every_route_but_the_public_ones_refuses_a_request_without_credentials(
    client: TestClient, settings: Settings
) -> None:
    found = list(_routes(client.app.routes))  # type: ignore[attr-defined]
    assert ("GET", "/api/v1/summary") in found and ("POST", "/login") in found
    assert {path for _, path in found} >= PUBLIC | {settings.callback_path}
    for method, path in found:
        url = re.sub(r"\{[^}]+\}", "x", path)
        answer = client.request(method, url, follow_redirects=False)
        if path in PUBLIC:
            assert answer.status_code < 500, (method, path, answer.status_code)
            if path == "/metrics":
                assert "callpulse_last_hour" not in answer.text
            if path == "/":
                assert 'name="token"' in answer.text and 'id="tiles"' not in answer.text
        else:
            assert answer.status_code in (401, 403), (method, path, answer.status_code)
