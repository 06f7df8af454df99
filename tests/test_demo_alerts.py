"""The demo's alert settings and its webhook receiver, fed by the real webhook sender."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from callpulse.alerts.webhook import Webhook
from callpulse.config import load_settings
from callpulse.demo_alerts import ALERT_INTERVAL_S, WebhookReceiver, describe, serve_env
from callpulse.errors import CallpulseError
from tests.support import free_port

FIRING = {
    "text": "[FIRING] low-mos (warning): ...", "rule": "low-mos", "state": "firing",
    "metric": "mos_p50", "scope": "to=+18005559876", "value": 2.8, "threshold": 3.5,
}  # fmt: skip


def test_the_demo_serve_reads_quick_versions_of_the_shipped_rules(tmp_path: Path) -> None:
    env = serve_env(tmp_path, "http://127.0.0.1:9/", "whsec-x", "http://127.0.0.1:8080")
    settings = load_settings(env)
    assert settings.alert_interval_s == ALERT_INTERVAL_S
    assert (settings.alert_webhook_url, settings.alert_webhook_secret) == (
        "http://127.0.0.1:9/",
        "whsec-x",
    )
    rules = {rule.name: rule for rule in settings.alerts}
    for name in ("success-rate", "poor-calls", "low-mos"):
        assert rules[name].window == timedelta(minutes=2)
        assert rules[name].for_ == timedelta(seconds=20)
    # Thresholds stay the shipped ones; only the demo's file changes windows and holds.
    assert (rules["low-mos"].trigger, rules["low-mos"].reset, rules["low-mos"].per) == (
        3.5,
        3.8,
        "to",
    )
    assert rules["poor-calls"].min_calls == 20
    assert load_settings({}).alerts[0].window == timedelta(minutes=15)


def test_describe_is_one_line_with_value_against_threshold() -> None:
    assert describe(FIRING, True) == (
        "webhook  FIRING  low-mos  to=+18005559876  mos_p50 2.80 vs threshold 3.50  signature ok"
    )
    assert describe([1], False) == "webhook  (not a JSON object)  signature INVALID"


async def raw(port: int, rest: bytes) -> str:
    """The status line answered to a POST whose headers end with ``rest``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n" + rest)
    status = (await reader.read()).split(b"\r\n")[0].decode()
    writer.close()
    return status


def test_the_receiver_verifies_each_notification_and_prints_it() -> None:
    lines: list[str] = []
    receiver = WebhookReceiver(free_port(), lines.append)
    body = json.dumps(FIRING)

    async def main() -> list[int | str]:
        await receiver.start()
        try:
            with httpx.Client() as client:
                await asyncio.to_thread(Webhook(receiver.url, receiver.secret).post, client, body)
                try:
                    await asyncio.to_thread(Webhook(receiver.url, "forged").post, client, body)
                except CallpulseError as exc:
                    refused: int | str = str(exc)
                async with httpx.AsyncClient() as aclient:
                    get = (await aclient.get(receiver.url)).status_code
                big = await raw(receiver.port, b"Content-Length: 300000\r\n\r\n")  # not sent
                bad = await raw(receiver.port, b"Content-Length: two\r\n\r\n{}")
            return [refused, get, big, bad]
        finally:
            await receiver.close()

    refused, get, big, bad = asyncio.run(main())
    assert refused == f"webhook {receiver.url}: answered 401"
    assert (get, big, bad) == (405, "HTTP/1.1 413 Content Too Large", "HTTP/1.1 400 Bad Request")
    assert lines == [describe(FIRING, True), describe(FIRING, False)]


def test_a_port_taken_meanwhile_is_one_line_naming_the_option() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        receiver = WebhookReceiver(port, print)
        with pytest.raises(CallpulseError, match=rf"^port {port} on 127.0.0.1: .*--webhook-port"):
            asyncio.run(receiver.start())
