"""What `callpulse demo --degrade` adds: alert rules quick enough to watch, and a local webhook
receiver that checks each notification's signature and prints it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path

from callpulse.alerts.notify import SIGNATURE_HEADER, figure, verify_signature
from callpulse.demo import HOST
from callpulse.errors import CallpulseError

ALERT_INTERVAL_S = 5
# The shipped rules of these names over 2-minute windows, held 20 s instead of 5 minutes, so a
# degradation shows within a couple of minutes; min_calls 20 per number keeps the demo's bad line
# (a few calls a minute) out of them. Only the demo's `serve` reads this file.
RULES_TOML = """\
[[alerts]]
name = "success-rate"
window = "2m"
for = "20s"

[[alerts]]
name = "poor-calls"
window = "2m"
min_calls = 20
for = "20s"

[[alerts]]
name = "low-mos"
window = "2m"
min_calls = 20
for = "20s"
"""
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 256 * 1024  # a notification is well under 1 KiB
READ_TIMEOUT_S = 10.0


def serve_env(config_dir: Path, webhook_url: str, secret: str, public_url: str) -> dict[str, str]:
    """The demo `serve`'s alert settings (its own config file, never the user's)."""
    config = config_dir / "demo-alerts.toml"
    config.write_text(RULES_TOML)
    return {
        "CALLPULSE_CONFIG": str(config),
        "CALLPULSE_ALERT_INTERVAL_S": str(ALERT_INTERVAL_S),
        "CALLPULSE_ALERT_WEBHOOK_URL": webhook_url,
        "CALLPULSE_ALERT_WEBHOOK_SECRET": secret,
        "CALLPULSE_PUBLIC_URL": public_url,
    }


def describe(payload: object, signed: bool) -> str:
    """One line per notification: rule, state, scope, value vs threshold, signature."""
    ok = "signature ok" if signed else "signature INVALID"
    if not isinstance(payload, dict):
        return f"webhook  (not a JSON object)  {ok}"
    metric = str(payload.get("metric", ""))

    def shown(key: str) -> str:
        value = payload.get(key)
        return figure(metric, value) if isinstance(value, int | float) else "-"

    return (
        f"webhook  {str(payload.get('state', '?')).upper()}  {payload.get('rule', '?')}  "
        f"{payload.get('scope', '?')}  {metric} {shown('value')} vs threshold "
        f"{shown('threshold')}  {ok}"
    )


class WebhookReceiver:
    """A loopback HTTP server for POSTed notifications: each is verified against ``secret`` and
    described to ``echo``; 204 when the signature holds, 401 otherwise."""

    def __init__(self, port: int, echo: Callable[[str], None]) -> None:
        self.port = port
        self.echo = echo
        self.secret = "whsec-" + secrets.token_hex(24)
        self.url = f"http://{HOST}:{port}/"
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._handle, HOST, self.port, reuse_address=True, limit=MAX_HEAD_BYTES
            )
        except OSError as exc:  # taken since the demo checked it
            raise CallpulseError(
                f"port {self.port} on {HOST}: {exc.strerror}: pass --webhook-port PORT"
            ) from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status = await asyncio.wait_for(self._one(reader), READ_TIMEOUT_S)
        except (
            TimeoutError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            status = "400 Bad Request"
        try:
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except ConnectionError:
            pass  # the sender went away; it retries on its own
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader) -> str:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        if not request_line.startswith("POST "):
            return "405 Method Not Allowed"
        headers = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))  # ValueError: a 400
        if not 0 <= length <= MAX_BODY_BYTES:
            return "413 Content Too Large"
        body = await reader.readexactly(length)
        signed = verify_signature(self.secret, headers.get(SIGNATURE_HEADER.lower(), ""), body)
        try:
            payload: object = json.loads(body)
        except ValueError:
            payload = None
        self.echo(describe(payload, signed))
        return "204 No Content" if signed else "401 Unauthorized"
