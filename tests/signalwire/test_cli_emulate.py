"""`callpulse emulate` as users run it: generated credentials, a clean stop, one-line errors."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import ACCOUNT_SID, SIGNING_KEY, EmulatorProcess, run_cli, wait_until_healthy


def test_generated_credentials_are_printed_and_work(tmp_path: Path) -> None:
    log_path = tmp_path / "emulate.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callpulse", "emulate", "--port", "0", "--numbers", "2"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"http://127\.0\.0\.1:(\d+) ", log_path.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        base_url = f"http://127.0.0.1:{found.group(1)}"
        wait_until_healthy(proc, base_url, log_path, 20)
        lines = re.findall(
            r"^  (project id|API token|signing key) +(\S+)$", log_path.read_text(), re.M
        )
        printed = dict(lines)
        assert printed["signing key"].startswith("PSK")
        project, token = printed["project id"], printed["API token"]
        url = f"{base_url}/api/laml/2010-04-01/Accounts/{project}/IncomingPhoneNumbers.json"
        assert len(httpx.get(url, auth=(project, token)).json()["incoming_phone_numbers"]) == 2
        assert httpx.get(url, auth=(project, "guess")).status_code == 401
    finally:
        proc.terminate()
        proc.wait(15)


def test_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    emulator = EmulatorProcess(tmp_path, args=("--numbers", "3")).start()
    numbers = httpx.get(
        f"{emulator.api_base}/Accounts/{emulator.project_id}/IncomingPhoneNumbers.json",
        auth=emulator.auth,
    ).json()["incoming_phone_numbers"]
    assert len(numbers) == 3 and all(n["phone_number"].startswith("+1") for n in numbers)
    emulator.stop()
    # uvicorn shuts down, then re-raises the signal so that the exit status tells why.
    assert emulator.proc is not None and emulator.proc.returncode in (0, -signal.SIGTERM)
    log = emulator.log_path.read_text()
    assert "Traceback" not in log
    assert f"project id   {ACCOUNT_SID}" in log and f"signing key  {SIGNING_KEY}" in log


def test_a_busy_port_is_one_line_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("emulate", "--port", str(port), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"callpulse: error: cannot listen on 127.0.0.1:{port} (Address already in use): "
        "choose another --port or --host"
    )
