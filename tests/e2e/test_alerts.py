"""Alerts end to end: real `serve` processes evaluating every second on one PostgreSQL, signed
callbacks degrading one number's MOS, a webhook receiver that fails its first attempt."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.alerts.receiver import Receiver, verify
from tests.support import ServerProcess, callback_fields, postgres_schema

SECRET = "whsec-e2e-0123456789"
CONFIG = """
alerts_defaults = false

[[alerts]]
name = "low-mos"
metric = "mos_p50"
per = "to"
window = "15m"
min_calls = 5
trigger = 3.5
reset = 3.8
"""
GOOD, BAD = "+18005550001", "+18005550002"


def wait_for(check: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def send(server: ServerProcess, to: str, mos: str, count: int) -> None:
    stamp = email.utils.format_datetime(datetime.now(UTC))
    calls = [callback_fields(To=to, AudioInMos=mos, Timestamp=stamp) for _ in range(count)]
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(4) as pool:
        codes = set(pool.map(lambda fields: server.post(fields, client=client).status_code, calls))
    assert codes == {200}


def test_fires_once_notifies_once_resolves_once_and_a_restart_is_quiet(tmp_path: Path) -> None:
    config = tmp_path / "callpulse.toml"
    config.write_text(CONFIG)
    with postgres_schema() as url, Receiver(failures=1) as receiver:
        env = {
            "CALLPULSE_DATABASE_URL": url,
            "CALLPULSE_CONFIG": str(config),
            "CALLPULSE_ALERT_INTERVAL_S": "1",
            "CALLPULSE_ALERT_WEBHOOK_URL": receiver.url,
            "CALLPULSE_ALERT_WEBHOOK_SECRET": SECRET,
        }
        servers = []
        for name in ("a", "b"):  # two servers racing every round
            (tmp_path / name).mkdir()
            servers.append(ServerProcess(tmp_path / name, env=env).start())
        try:
            send(servers[0], GOOD, "4.4", 10)
            send(servers[1], BAD, "2.6", 10)
            # The first attempt fails; the retry comes after the backoff (10 s).
            wait_for(lambda: len(receiver.delivered) == 1)
            send(servers[1], BAD, "4.3", 30)  # the number recovers
            wait_for(lambda: len(receiver.delivered) == 2)
            time.sleep(3)  # rounds go on in both servers: nothing more
            assert [(b["rule"], b["state"], b["scope"]) for b in receiver.delivered] == [
                ("low-mos", "firing", f"to={BAD}"),
                ("low-mos", "resolved", f"to={BAD}"),
            ]
            assert len(receiver.attempts) == 3  # the failed one, then each once
            for headers, body in receiver.attempts:
                assert verify(SECRET, headers["X-Callpulse-Signature"], body)
            for server in servers:
                server.stop()
            servers[0].start()
            time.sleep(3)  # a restarted server evaluates again: no news, nothing sent
            assert len(receiver.attempts) == 3
            history = servers[0].cli("alerts", "history", "--json").stdout.splitlines()
            assert len(history) == 2  # each transition stored once
        finally:
            for server in servers:
                server.stop()
