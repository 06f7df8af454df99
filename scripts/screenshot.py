"""Regenerates docs/dashboard.png and docs/dashboard-phone.png: a server on a temporary
database, days of simulated signed traffic (plus a few rejected requests for the quarantine
view), a browser log-in, screenshots at desktop and phone width."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
# (file, viewport width, whole page): the desktop view as it opens, the phone scrolled through.
OUTPUTS = (
    (ROOT / "docs" / "dashboard.png", 1440, False),
    (ROOT / "docs" / "dashboard-phone.png", 390, True),
)
SIGNING_KEY = "PSKscreenshot-signing-key"
CALLS = 8000  # two days: the view shows the last one against the one before


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("callpulse serve exited; see its output above")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    sys.exit("callpulse serve did not become healthy within 30 s")


def _reject_a_few(callback_url: str) -> None:
    """Requests the receiver refuses, so the quarantine view has entries to show."""
    httpx.post(callback_url, data={"CallSid": "CA-unsigned", "From": "+15551234567"})
    httpx.post(
        callback_url,
        data={"CallSid": "CA-bad", "From": "<script>alert(1)</script>"},
        headers={"X-SignalWire-Signature": "not-a-valid-signature"},
    )


def _shoot(base_url: str, token: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        for output, width, whole in OUTPUTS:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(f"{base_url}/")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_selector("body[data-ready='1']", state="attached", timeout=30000)
            page.screenshot(path=str(output), full_page=whole)
            page.close()
            print(f"wrote {output.relative_to(ROOT)}")
        browser.close()


def main() -> None:
    token = secrets.token_urlsafe(24)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    callback_url = f"{base_url}/callbacks/call-status"
    with tempfile.TemporaryDirectory(prefix="callpulse-screenshot-") as workdir:
        env = {
            **os.environ,
            "CALLPULSE_DATABASE_URL": f"sqlite:///{workdir}/callpulse.db",
            "CALLPULSE_SPOOL_DIR": f"{workdir}/spool",
            "CALLPULSE_SIGNING_KEYS": SIGNING_KEY,
            "CALLPULSE_API_TOKEN": token,
        }
        callpulse = [sys.executable, "-m", "callpulse"]
        server = subprocess.Popen([*callpulse, "serve", "--port", str(port)], env=env)
        try:
            _wait_healthy(base_url, server)
            subprocess.run(
                [
                    *callpulse, "simulate", "--url", callback_url, "--calls", str(CALLS),
                    "--backfill", "2d", "--rate", "0", "--seed", "7",
                ],
                env=env,
                check=True,
            )  # fmt: skip
            _reject_a_few(callback_url)
            _shoot(base_url, token)
        finally:
            server.terminate()
            server.wait(15)


if __name__ == "__main__":
    main()
