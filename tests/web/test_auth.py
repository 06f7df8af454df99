"""Who gets in: the API token, the log-in session cookie, and a server without a token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callpulse.web.auth import SESSION_COOKIE, Access
from tests.support import ServerProcess

TOKEN = "auth-test-token-8c2e61f4a0"


def _start(tmp_path: Path, env: dict[str, str], args: tuple[str, ...] = ()) -> ServerProcess:
    return ServerProcess(tmp_path, env=env, args=args).start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = _start(tmp_path, {"CALLPULSE_API_TOKEN": TOKEN})
    yield proc
    proc.stop()


def _login(server: ServerProcess, token: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/login", data={"token": token}, headers=headers)


def test_login_sets_a_strict_httponly_session_cookie_that_opens_the_api(
    server: ServerProcess,
) -> None:
    response = _login(server, TOKEN)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    session = response.cookies[SESSION_COOKIE]
    assert TOKEN not in session
    with httpx.Client(base_url=server.base_url, cookies={SESSION_COOKIE: session}) as client:
        assert client.get("/api/v1/summary").status_code == 200
        page = client.get("/")
        assert page.status_code == 200
        assert 'id="tiles"' in page.text
        logout = client.post("/logout")
        assert logout.status_code == 303
        assert f'{SESSION_COOKIE}="";' in logout.headers["set-cookie"]
        assert "Max-Age=0" in logout.headers["set-cookie"]


def test_wrong_token_and_forged_cookies_are_refused(server: ServerProcess) -> None:
    wrong = _login(server, "guess")
    assert wrong.status_code == 401
    assert "set-cookie" not in wrong.headers
    assert "wrong token" in wrong.text
    session = _login(server, TOKEN).cookies[SESSION_COOKIE]
    issued, nonce, mac = session.split(".")
    forged = [
        f"{int(issued) + 1}.{nonce}.{mac}",  # a later issue time under the same MAC
        f"{issued}.{nonce}.{'0' * len(mac)}",
        TOKEN,
        "",
    ]
    for value in forged:
        answer = httpx.get(f"{server.base_url}/api/v1/summary", cookies={SESSION_COOKIE: value})
        assert answer.status_code == 401, value
        page = httpx.get(f"{server.base_url}/", cookies={SESSION_COOKIE: value})
        assert 'name="token"' in page.text  # the log-in form, not the dashboard


def test_login_from_another_site_is_refused(server: ServerProcess) -> None:
    response = _login(server, TOKEN, Origin="https://evil.example")
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_pages_forbid_inline_script(server: ServerProcess) -> None:
    cookies = _login(server, TOKEN).cookies
    login_page = httpx.get(f"{server.base_url}/")
    dashboard = httpx.get(f"{server.base_url}/", cookies=cookies)
    assert 'id="tiles"' in dashboard.text and 'id="tiles"' not in login_page.text
    for response in (login_page, dashboard):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        tags = re.findall(r"<script\b[^>]*>(.*?)</script>", response.text, re.S | re.I)
        assert all(body.strip() == "" for body in tags)  # only <script src=...></script>
        assert not re.search(r"\son[a-z]+\s*=", response.text, re.I)  # no inline handlers


def test_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path) -> None:
    env = {"CALLPULSE_API_TOKEN": TOKEN, "CALLPULSE_PUBLIC_URL": "https://calls.example.com"}
    server = _start(tmp_path, env)
    try:
        # Behind a proxy: the browser's Origin is the public URL, not the Host the server sees.
        response = _login(server, TOKEN, Origin="https://calls.example.com")
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]
    finally:
        server.stop()


def test_without_a_token_everything_is_closed(tmp_path: Path) -> None:
    server = _start(tmp_path, {"CALLPULSE_API_TOKEN": ""})
    try:
        api = httpx.get(f"{server.base_url}/api/v1/summary")
        assert api.status_code == 403
        assert "set CALLPULSE_API_TOKEN" in api.json()["error"]
        page = httpx.get(f"{server.base_url}/")
        assert page.status_code == 403
        assert "set CALLPULSE_API_TOKEN" in page.text
        assert _login(server, "").status_code == 403
    finally:
        server.stop()


def test_allow_unsigned_on_loopback_opens_api_and_dashboard_with_warnings(
    tmp_path: Path,
) -> None:
    env = {"CALLPULSE_API_TOKEN": "", "CALLPULSE_SIGNING_KEYS": ""}
    server = _start(tmp_path, env, args=("--allow-unsigned",))
    try:
        assert httpx.get(f"{server.base_url}/api/v1/summary").status_code == 200
        page = httpx.get(f"{server.base_url}/").text
        assert "Signatures are not checked" in page
        assert "No API token" in page
        # A page of another site whose name now resolves to 127.0.0.1 (DNS rebinding).
        rebound = {"Host": f"attacker.example:{server.port}"}
        assert httpx.get(f"{server.base_url}/api/v1/calls", headers=rebound).status_code == 403
        local = {"Host": f"localhost:{server.port}"}
        assert httpx.get(f"{server.base_url}/api/v1/calls", headers=local).status_code == 200
    finally:
        server.stop()


def test_sessions_end_when_the_token_changes() -> None:
    session = Access("first-token").new_session()
    assert Access("first-token").session_valid(session)
    assert not Access("second-token").session_valid(session)
    assert not Access("").session_valid(session)
