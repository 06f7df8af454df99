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

from tests.support import ServerProcess, callback_fields


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path).start()
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
