"""Status callbacks from the emulator: signed so the receiver accepts them, retried on timeouts
only, and dropped on purpose when asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from callpulse.signature import verify
from tests.support import ACCOUNT_SID, SIGNING_KEY, EmulatorProcess, ServerProcess


def add_number(
    emulator: EmulatorProcess, phone_number: str, callback: str = "", method: str = "POST"
) -> dict[str, Any]:
    response = httpx.post(
        f"{emulator.api_base}/Accounts/{emulator.project_id}/IncomingPhoneNumbers.json",
        data={
            "PhoneNumber": phone_number,
            "StatusCallback": callback,
            "StatusCallbackMethod": method,
        },
        auth=emulator.auth,
    )
    assert response.status_code == 201, response.text
    number: dict[str, Any] = response.json()
    return number


def place(emulator: EmulatorProcess, **params: str) -> dict[str, Any]:
    response = httpx.post(
        f"{emulator.base_url}/emulator/calls", data=params, auth=emulator.auth, timeout=60
    )
    assert response.status_code == 201, response.text
    call: dict[str, Any] = response.json()
    return call


def deliveries(emulator: EmulatorProcess, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{emulator.base_url}/emulator/deliveries", params=params, auth=emulator.auth
    )
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_receiver_verifies_and_stores_the_emulators_callbacks(
    emulator: EmulatorProcess, server: ServerProcess, method: str
) -> None:
    line = add_number(emulator, "+14155550100", server.callback_url, method)["phone_number"]
    placed = [place(emulator, To=line, Wait="true") for _ in range(5)]
    placed.append(place(emulator, To=line, From="anonymous", CallStatus="failed", Wait="true"))
    for call in placed:
        assert call["callback"] == {"attempts": 1, "status_code": 200, "outcome": "delivered"}
    with server.store() as store:
        assert store.count_calls() == len(placed)
        for call in placed:
            stored = store.get_call(ACCOUNT_SID, call["sid"])
            assert stored is not None, call
            record = stored.record
            assert (record.to_number, record.status) == (line, call["status"])
            assert (record.duration_s, record.mos) == (call["duration"], call["audio_in_mos"])
            assert record.started_at.strftime("%a, %d %b %Y %H:%M:%S +0000") == call["start_time"]
    assert {d["method"] for d in deliveries(emulator)} == {method}


def test_callbacks_go_out_in_the_background(
    emulator: EmulatorProcess, server: ServerProcess
) -> None:
    line = add_number(emulator, "+14155550101", server.callback_url)["phone_number"]
    sids = [place(emulator, To=line)["sid"] for _ in range(10)]
    deadline = time.monotonic() + 10
    while len(deliveries(emulator)) < len(sids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert {d["call_sid"] for d in deliveries(emulator) if d["outcome"] == "delivered"} == set(sids)
    with server.store() as store:
        assert all(store.get_call(ACCOUNT_SID, sid) is not None for sid in sids)


class Sink:
    """A callback URL on loopback that records what it gets; slow or failing on request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.delays: list[float] = []  # seconds to stall before answering, per request in order
        self.status = 200
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                index = len(sink.requests)
                sink.requests.append((self.command, self.path, dict(self.headers), body))
                if index < len(sink.delays):
                    time.sleep(sink.delays[index])
                self.send_response(sink.status)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook?team=ops"


@pytest.fixture
def sink() -> Iterator[Sink]:
    sink = Sink()
    thread = threading.Thread(target=sink.httpd.serve_forever, daemon=True)
    thread.start()
    yield sink
    sink.httpd.shutdown()
    sink.httpd.server_close()
    thread.join()


def test_a_timeout_is_retried_and_the_second_attempt_delivers(
    emulator: EmulatorProcess, sink: Sink
) -> None:
    sink.delays = [1.5]  # past the read timeout the fragment sets (500 ms) on the first attempt
    line = add_number(emulator, "+13125550100", sink.url + "#rt=500")["phone_number"]
    call = place(emulator, To=line, Wait="true")
    assert call["callback"] == {"attempts": 2, "status_code": 200, "outcome": "delivered"}
    attempts = deliveries(emulator, CallSid=call["sid"])
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "timed_out"), (2, "delivered")]
    assert attempts[0]["error"] == "timed out" and attempts[0]["status_code"] is None
    assert {a["url"] for a in attempts} == {sink.url}  # the fragment is not part of the URL
    # Both attempts carry the same valid signature over the URL the sink was called at.
    for method, path, headers, body in sink.requests:
        assert method == "POST" and path == "/hook?team=ops"
        params = [tuple(p.split("=", 1)) for p in body.decode().split("&")]
        assert {name for name, _ in params} >= {"CallSid", "AccountSid", "AudioInMos"}
        verify(
            url=sink.url,
            signature=headers["X-SignalWire-Signature"],
            keys=[SIGNING_KEY],
            account_sid=ACCOUNT_SID,
            params=[(n, httpx.QueryParams(f"v={v}")["v"]) for n, v in params],
        )


def test_three_timeouts_give_up(emulator: EmulatorProcess, sink: Sink) -> None:
    sink.delays = [1.0, 1.0, 1.0]
    line = add_number(emulator, "+13125550101", sink.url + "#rt=300", "GET")["phone_number"]
    call = place(emulator, To=line, Wait="true")
    assert call["callback"] == {"attempts": 3, "status_code": None, "outcome": "timed_out"}
    assert len(sink.requests) == 3
    assert all(method == "GET" and "CallSid=" in path for method, path, _, _ in sink.requests)


def test_an_error_answer_is_not_retried(emulator: EmulatorProcess, sink: Sink) -> None:
    sink.status = 500
    line = add_number(emulator, "+13125550102", sink.url)["phone_number"]
    call = place(emulator, To=line, Wait="true")
    assert call["callback"] == {"attempts": 1, "status_code": 500, "outcome": "failed"}
    assert len(sink.requests) == 1


def dropped_pattern(tmp_path: Path, sink_url: str, calls: int) -> tuple[list[bool], int]:
    """Which of ``calls`` calls got no callback, and how many calls the Calls API lists."""
    emulator = EmulatorProcess(tmp_path, args=("--drop-share", "0.5", "--seed", "1")).start()
    try:
        line = add_number(emulator, "+16175550100", sink_url)["phone_number"]
        sids = [place(emulator, To=line, Wait="true")["sid"] for _ in range(calls)]
        outcomes = {d["call_sid"]: d["outcome"] for d in deliveries(emulator)}
        listed = httpx.get(
            f"{emulator.api_base}/Accounts/{emulator.project_id}/Calls.json",
            params={"PageSize": "1000"},
            auth=emulator.auth,
        ).json()["calls"]
        return [outcomes[sid] == "dropped" for sid in sids], len(listed)
    finally:
        emulator.stop()


def test_drop_share_drops_about_that_share_reproducibly(tmp_path: Path, sink: Sink) -> None:
    calls = 60
    dropped, listed = dropped_pattern(tmp_path, sink.url, calls)
    assert 18 <= sum(dropped) <= 42
    assert listed == calls  # dropped callbacks, not dropped calls: reconciliation finds them
    assert len(sink.requests) == calls - sum(dropped)
    assert dropped_pattern(tmp_path, sink.url, calls)[0] == dropped  # same seed, same drops


def test_drop_share_can_be_changed_while_running(emulator: EmulatorProcess, sink: Sink) -> None:
    settings = f"{emulator.base_url}/emulator/settings"
    line = add_number(emulator, "+16175550101", sink.url)["phone_number"]
    response = httpx.post(settings, data={"DropShare": "1"}, auth=emulator.auth)
    assert response.json() == {"drop_share": 1.0}
    assert place(emulator, To=line, Wait="true")["callback"]["outcome"] == "dropped"
    bad = httpx.post(settings, data={"DropShare": "1.5"}, auth=emulator.auth)
    assert bad.status_code == 400 and "DropShare" in bad.json()["message"]
    httpx.post(settings, json={"DropShare": 0}, auth=emulator.auth)
    assert httpx.get(settings, auth=emulator.auth).json() == {"drop_share": 0.0}
    assert place(emulator, To=line, Wait="true")["callback"]["outcome"] == "delivered"
    assert len(sink.requests) == 1
