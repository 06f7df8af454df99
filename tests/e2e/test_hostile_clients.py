"""A real `callpulse serve` against clients that misbehave at the connection level: they leave
mid-body, stall, or send huge headers. The server answers briefly, stores nothing and keeps
serving."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, callback_fields, sign

TIMEOUT_S = 1.0  # CALLPULSE_REQUEST_TIMEOUT_S here, so that stalled clients go quickly


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path, env={"CALLPULSE_REQUEST_TIMEOUT_S": str(TIMEOUT_S)}).start()
    yield proc
    proc.stop()


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _wait_for_log(server: ServerProcess, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log_path.read_text()
        if text in log:
            return log
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the server log: {server.log_path.read_text()}")


def test_a_client_leaving_mid_body_costs_one_log_line_and_stores_nothing(
    server: ServerProcess,
) -> None:
    body = "&".join(f"{k}={v}" for k, v in callback_fields().items()).encode()
    for _ in range(3):
        with _connect(server) as sock:
            sock.sendall(
                b"POST /callbacks/call-status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[: len(body) // 2]
            )
            time.sleep(0.2)  # the server is now waiting for the rest of the body
    log = _wait_for_log(server, "left before its request body was complete")
    time.sleep(0.3)  # anything else the disconnects would have logged
    log = server.log_path.read_text()
    assert "Traceback" not in log
    assert log.count("left before its request body was complete") == 3
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    with server.store() as store:
        assert store.count_calls() == 0
        assert store.quarantine_counts() == (0, 0)


def _answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _callback_answered(server: ServerProcess) -> None:
    fields = callback_fields()
    response = httpx.post(
        server.callback_url,
        data=fields,
        headers={"X-SignalWire-Signature": sign(server.callback_url, fields)},
        timeout=30,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Many: a\r\n" * 2000 + b"\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * 100_000,  # never ends
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["one-big-header", "many-headers", "unfinished-header", "long-url"],
)
def test_a_head_over_the_limit_gets_431_and_the_server_keeps_serving(
    server: ServerProcess, head: bytes
) -> None:
    with _connect(server) as sock:
        sock.sendall(head)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"exceed 16384 bytes" in answer
    _callback_answered(server)
    assert "Traceback" not in server.log_path.read_text()


def test_a_client_that_stalls_mid_request_is_cut_off_with_408(server: ServerProcess) -> None:
    for partial in (
        b"GET /heal",
        b"POST /callbacks/call-status HTTP/1.1\r\nContent-Length: 9\r\n\r\nab",
    ):
        with _connect(server) as sock:
            started = time.monotonic()
            sock.sendall(partial)
            answer = _answer(sock)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert TIMEOUT_S * 0.9 <= waited < TIMEOUT_S + 4


def test_a_connection_that_sends_nothing_is_closed_too(server: ServerProcess) -> None:
    with _connect(server) as sock:
        assert _answer(sock).startswith(b"HTTP/1.1 408 ")


def test_stalled_connections_do_not_stop_a_signed_callback(server: ServerProcess) -> None:
    stalled = [_connect(server) for _ in range(200)]
    try:
        for sock in stalled:
            sock.sendall(b"POST /callbacks/call-status HTTP/1.1\r\nHo")
        _callback_answered(server)
    finally:
        for sock in stalled:
            sock.close()
