"""What `callpulse demo` runs: the emulator and the receiver as child `callpulse` processes on
loopback, with generated credentials shared between them."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from callpulse.errors import CallpulseError

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DemoSecrets:
    """Fresh for every run: nothing of a demo is reusable against a real deployment."""

    project_id: str
    api_token: str  # the emulator's REST API token
    signing_key: str  # shared by the emulator (signs) and the receiver (verifies)
    dashboard_token: str  # CALLPULSE_API_TOKEN: the dashboard's log-in

    @classmethod
    def generate(cls) -> DemoSecrets:
        return cls(
            project_id=str(uuid.uuid4()),
            api_token="PT" + secrets.token_hex(24),
            signing_key="PSK" + secrets.token_hex(16),
            dashboard_token=secrets.token_urlsafe(18),
        )


def ensure_port_free(port: int, option: str) -> None:
    # SO_REUSEADDR as the servers bind: connections of a demo just stopped, still in TIME_WAIT,
    # must not make the port look taken.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            raise CallpulseError(
                f"port {port} on {HOST} is in use: stop what runs there or pass {option} PORT"
            ) from None


class Child:
    """One `callpulse` command as a child process, its output in ``log_path``.

    It runs in its own session so that Ctrl-C reaches only the demo, which then stops the
    traffic first and its children afterwards, in order."""

    def __init__(
        self,
        name: str,
        args: list[str],
        port: int,
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.args = args
        self.base_url = f"http://{HOST}:{port}"
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "callpulse", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def failure(self) -> CallpulseError:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        # The child's own one-line error, if it printed one, says best what went wrong.
        last = next((line for line in reversed(lines) if "error" in line.lower()), None)
        reason = last or (lines[-1] if lines else "no output")
        return CallpulseError(
            f"the {self.name} (callpulse {self.args[0]}) stopped: "
            + reason.removeprefix("callpulse: error: ")
        )

    async def wait_healthy(self, stop: asyncio.Event) -> None:
        """Until ``/healthz`` answers 200 (or ``stop`` is set); the child's own error if it
        exits first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=1.0) as client:
            while not stop.is_set():
                if self.exited():
                    raise self.failure()
                try:
                    if (await client.get(f"{self.base_url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise CallpulseError(
                        f"the {self.name} did not answer at {self.base_url}/healthz within "
                        f"{START_TIMEOUT_S:g} s"
                    )
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it takes too long."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
