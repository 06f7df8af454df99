"""The session cookie in process: only well-formed, signed, unexpired and unrevoked ones open."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

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
