"""`callpulse serve`: what it says at start and what it logs per callback."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import httpx
import pytest

from callpulse.cli.serve import access_note
from tests.support import ServerProcess, callback_fields

ANY_V4, ANY_V6 = str(ipaddress.IPv4Address(0)), str(ipaddress.IPv6Address(0))  # wildcard binds


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", ANY_V4, ANY_V6])
def test_allow_unsigned_without_a_token_is_open_on_loopback(host: str) -> None:
    note = access_note(token=False, allow_unsigned=True, host=host)
    assert "open without a token on loopback only" in note
    assert "closed to other hosts" in note and "CALLPULSE_API_TOKEN" in note


def test_allow_unsigned_on_an_outside_address_stays_closed() -> None:
    note = access_note(token=False, allow_unsigned=True, host="192.0.2.7")
    assert note.startswith(" (closed: 192.0.2.7 is not loopback")


def test_without_a_token_or_allow_unsigned_everything_is_closed() -> None:
    assert (
        access_note(False, False, "127.0.0.1") == " (closed: set CALLPULSE_API_TOKEN to open them)"
    )


def test_with_a_token_nothing_needs_saying() -> None:
    assert access_note(True, True, ANY_V4) == ""


def test_a_real_serve_logs_each_callback_as_json(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, args=("--log-format", "json")).start()
    try:
        call = callback_fields()
        assert server.post(call).json() == {"result": "inserted"}
        assert server.post(call, key="PSKwrong").status_code == 403
        assert server.post(callback_fields(CallSid="not an id")).status_code == 400
    finally:
        server.stop()  # the last lines are written before the process ends
    records = [json.loads(line) for line in server.log_path.read_text().splitlines()
               if line.startswith("{")]  # fmt: skip
    callbacks = [r for r in records if r.get("event") == "callback"]
    assert [(r["status"], r["outcome"], r["call_sid"]) for r in callbacks] == [
        (200, "inserted", call["CallSid"]),
        (403, "signature", call["CallSid"]),
        (400, "invalid", None),
    ]
    assert all(r["logger"] == "callpulse.access" and r["level"] == "info" for r in callbacks)


def test_a_real_serve_with_allow_unsigned_tells_the_truth_and_logs_text(tmp_path: Path) -> None:
    env = {"CALLPULSE_SIGNING_KEYS": "", "CALLPULSE_API_TOKEN": ""}
    server = ServerProcess(tmp_path, env=env, args=("--allow-unsigned",)).start()
    try:
        summary = httpx.get(f"{server.base_url}/api/v1/summary")
        assert summary.status_code == 200  # open on loopback, as the start message says
        fields = callback_fields()
        assert httpx.post(server.callback_url, data=fields).json() == {"result": "inserted"}
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "open without a token on loopback only" in log
    assert f"callback 200 inserted CallSid={fields['CallSid']} from 127.0.0.1" in log
