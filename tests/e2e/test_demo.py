"""`callpulse demo` as a newcomer runs it: dashboard up, calls arriving, Ctrl-C ends it cleanly."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from callpulse.config import Settings
from callpulse.demo import ensure_port_free
from callpulse.errors import CallpulseError
from callpulse.store import open_store
from tests.support import free_port

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def count_calls(database_url: str) -> int:
    store = open_store(Settings(database_url=database_url))
    try:
        return store.count_calls()
    finally:
        store.close()


def port_is_free(port: int) -> bool:
    """The demo's own check passes: a demo started again now would get the port."""
    try:
        ensure_port_free(port, "--port")
    except CallpulseError:
        return False
    return True


def stop(proc: subprocess.Popen[bytes], stop_signal: int) -> int:
    proc.send_signal(stop_signal)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def assert_stopped_cleanly(code: int, err_path: Path, ports: tuple[int, ...]) -> None:
    """Exit code 0, one line saying so, no traceback, and every port free again."""
    stderr = err_path.read_text()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "callpulse demo stopped" in stderr
    assert wait_for(
        lambda: True if all(port_is_free(p) for p in ports) else None,
        "the ports to be released",
        5,
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_demo_serves_the_dashboard_plays_calls_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port, emulator_port = free_port(), free_port()
    database_url = f"sqlite:///{tmp_path / 'demo.db'}"
    out_path, err_path = tmp_path / "demo.out", tmp_path / "demo.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callpulse", "demo", "--port", str(port),
             "--emulator-port", str(emulator_port), "--database", database_url, "--days", "1",
             "--rate", "5"],  # --rate overrides the daily pattern: live calls within seconds
            cwd=tmp_path,
            stdout=out,
            stderr=err,
        )  # fmt: skip
    try:

        def printed_url() -> str | None:
            if proc.poll() is not None:
                raise AssertionError(f"demo exited early: {err_path.read_text()}")
            found = re.search(r"dashboard\s+(http://\S+)", out_path.read_text())
            return found.group(1) if found else None

        url = wait_for(printed_url, "the dashboard URL")
        assert url == f"http://127.0.0.1:{port}/"
        token = re.search(r"API token\s+(\S+)", out_path.read_text())
        assert token and len(token.group(1)) >= 16
        page = httpx.get(url, follow_redirects=True, timeout=5)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]

        # The backlog (a day: 1000 calls) lands, then live calls keep arriving.
        backlog = wait_for(
            lambda: n if (n := count_calls(database_url)) >= 1000 else None, "the backlog"
        )
        wait_for(lambda: True if count_calls(database_url) > backlog else None, "live calls", 15)
    finally:
        code = stop(proc, stop_signal)
    assert_stopped_cleanly(code, err_path, (port, emulator_port))


def test_demo_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "callpulse", "demo", "--port", str(port),
             "--emulator-port", str(free_port())],
            cwd=tmp_path, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"callpulse: error: port {port} on 127.0.0.1 is in use: stop what runs there or pass "
        "--port PORT"
    )


def test_a_child_that_cannot_start_is_one_line_and_the_other_is_stopped(tmp_path: Path) -> None:
    port, emulator_port = free_port(), free_port()
    result = subprocess.run(
        [sys.executable, "-m", "callpulse", "demo", "--port", str(port),
         "--emulator-port", str(emulator_port), "--database", "nosuch://db"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        "callpulse: error: the receiver (callpulse serve) stopped: CALLPULSE_DATABASE_URL: "
        "unsupported database URL 'nosuch://db'"
    ), result.stderr
    assert port_is_free(emulator_port)


@pytest.mark.slow
def test_demo_degrade_fires_an_alert_at_its_webhook_and_on_the_api(tmp_path: Path) -> None:
    port, emulator_port, webhook_port = free_port(), free_port(), free_port()
    out_path, err_path = tmp_path / "demo.out", tmp_path / "demo.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callpulse", "demo", "--degrade", "--port", str(port),
             "--emulator-port", str(emulator_port), "--webhook-port", str(webhook_port),
             "--database", f"sqlite:///{tmp_path / 'demo.db'}", "--days", "1", "--rate", "5",
             "--degrade-after", "2"],
            cwd=tmp_path,
            stdout=out,
            stderr=err,
        )  # fmt: skip
    try:

        def printed(pattern: str) -> re.Match[str] | None:
            if proc.poll() is not None:
                raise AssertionError(f"demo exited early: {err_path.read_text()}")
            return re.search(pattern, out_path.read_text())

        webhook = wait_for(lambda: printed(r"webhook\s+(http://\S+)"), "the webhook URL")
        assert webhook.group(1) == f"http://127.0.0.1:{webhook_port}/"
        degraded = wait_for(lambda: printed(r"degraded\s+(\+\d+):"), "the degradation", 90)
        number = degraded.group(1)
        # The busiest number's calls sound poor from now on: its poor-calls alert (or low-mos)
        # fires within the demo rules' 20 s hold, and the demo's receiver checks the signature.
        fired = wait_for(
            lambda: printed(
                rf"webhook  FIRING  (poor-calls|low-mos)  to=\{number}  \S+ \S+ vs threshold "
                r"\S+  signature ok"
            ),
            "the firing notification",
            55,
        )
        assert "INVALID" not in out_path.read_text()
        token = printed(r"API token\s+(\S+)")
        assert token is not None
        alerts = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/alerts",
            headers={"Authorization": f"Bearer {token.group(1)}"},
            timeout=5,
        )
        assert alerts.status_code == 200
        active = {(a["rule"], a["scope"], a["state"]) for a in alerts.json()["active"]}
        assert (fired.group(1), f"to={number}", "firing") in active
        # The dashboard's banner reads the same with the session of a log-in with that token.
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=5) as browser:
            login = browser.post("/login", data={"token": token.group(1)}, headers={"Origin": base})
            assert login.status_code == 303
            seen = browser.get("/api/v1/alerts").json()["active"]
            assert (fired.group(1), f"to={number}", "firing") in {
                (a["rule"], a["scope"], a["state"]) for a in seen
            }
    finally:
        code = stop(proc, signal.SIGINT)
    assert_stopped_cleanly(code, err_path, (port, emulator_port, webhook_port))


def test_demo_degrade_needs_a_port_of_its_own_for_the_webhook(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "callpulse", "demo", "--degrade", "--port", str(port),
         "--emulator-port", str(free_port()), "--webhook-port", str(port)],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Invalid value for --webhook-port: must differ from --port" in result.stderr
    assert "Traceback" not in result.stderr
    alone = subprocess.run(
        [sys.executable, "-m", "callpulse", "demo", "--webhook-port", str(port)],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert alone.returncode == 2
    assert "Invalid value for --webhook-port: only with --degrade" in alone.stderr
