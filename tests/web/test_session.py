"""The session cookie in process: only well-formed, signed, unexpired and unrevoked ones open."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from callpulse.config import Settings
from callpulse.web.app import create_app
from callpulse.web.auth import SESSION_COOKIE, Access
from tests.web.conftest import TOKEN


@pytest.mark.parametrize(
    "value",
    [
        "\u00b2.a.b",  # byte 0xb2: a digit to str.isdigit(), not to int()
        "\u00b9" * 3 + f".{'0' * 32}.{'0' * 64}",
        "1" * 5000 + ".a.b",
        "12.zz.yy",
        "..",
        "1.2.3.4",
    ],
)
def test_a_malformed_cookie_is_not_a_session(client: TestClient, value: str) -> None:
    # Raw bytes, as an attacker sends them (the server reads header bytes as Latin-1).
    cookie = [(b"cookie", f"{SESSION_COOKIE}={value}".encode("latin-1"))]
    api = client.get("/api/v1/summary", headers=cookie)
    assert api.status_code == 401
    assert "authentication required" in api.json()["error"]
    page = client.get("/", headers=cookie)
    assert page.status_code == 200
    assert 'name="token"' in page.text  # the log-in form
    assert not Access(TOKEN).session_valid(value)


def _log_in(client: TestClient) -> str:
    response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303
    return response.cookies[SESSION_COOKIE]


def test_after_log_out_the_old_cookie_opens_nothing(client: TestClient) -> None:
    session = _log_in(client)
    other = _log_in(client)  # another browser's session
    cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}
    client.cookies.clear()
    assert client.get("/api/v1/summary", headers=cookie).status_code == 200
    assert client.post("/logout", headers=cookie, follow_redirects=False).status_code == 303
    client.cookies.clear()
    refused = client.get("/api/v1/summary", headers=cookie)
    assert refused.status_code == 401
    assert 'name="token"' in client.get("/", headers=cookie).text
    still = {"Cookie": f"{SESSION_COOKIE}={other}"}
    assert client.get("/api/v1/summary", headers=still).status_code == 200
    assert 'id="tiles"' in client.get("/", headers=still).text


def test_a_log_out_through_one_process_ends_the_session_in_another(
    client: TestClient, settings: Settings
) -> None:
    session = _log_in(client)
    cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}
    with TestClient(create_app(settings)) as elsewhere:  # its own Access, same database
        assert elsewhere.get("/api/v1/summary", headers=cookie).status_code == 200
        client.post("/logout", headers=cookie)
        assert elsewhere.get("/api/v1/summary", headers=cookie).status_code == 401
