from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
import pytest

from callpulse.alerts.engine import run_round
from callpulse.alerts.notify import SIGNATURE_HEADER, signature, verify_signature
from callpulse.alerts.rules import Rule
from callpulse.alerts.webhook import Webhook, backoff, deliver_due
from callpulse.analytics import Analytics
from callpulse.config import Settings
from callpulse.errors import CallpulseError
from callpulse.store import Store
from tests.alerts.conftest import NOW, Calls
from tests.alerts.receiver import Receiver, verify

SECRET = "whsec-test-0123456789"
DEAD = "http://127.0.0.1:9/x"  # the discard port: nothing listens
RULE = Rule("low-mos", "mos_p50", per="to", min_calls=5, trigger=3.5, reset=3.8)


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff(50) == timedelta(hours=1)


def test_signature_is_hmac_sha256_of_time_and_body() -> None:
    header = signature(SECRET, 1712255535, b'{"a":1}')
    assert header.startswith("t=1712255535,v1=")
    assert verify(SECRET, header, b'{"a":1}')
    assert not verify(SECRET, header, b'{"a":2}')
    assert not verify("another-secret", header, b'{"a":1}')


def test_verify_signature_checks_the_mac_and_refuses_stale_or_malformed_headers() -> None:
    header = signature(SECRET, 1712255535, b'{"a":1}')
    assert verify_signature(SECRET, header, b'{"a":1}', now=1712255535 + 300)
    assert not verify_signature(SECRET, header, b'{"a":1}', now=1712255535 + 301)  # a replay
    assert not verify_signature(SECRET, header, b'{"a":2}', now=1712255535)
    assert not verify_signature("another-secret", header, b'{"a":1}', now=1712255535)
    for bad in ("", "t=1712255535", "v1=00", "t=soon,v1=00", "garbage"):
        assert not verify_signature(SECRET, bad, b'{"a":1}', now=1712255535), bad


def test_a_failing_receiver_gets_it_again_after_backoff(store: Store, add_calls: Calls) -> None:
    add_calls(10, to="+18005550002", mos=2.8)
    run_round(store, Analytics(store, Settings()), [RULE], NOW, "http://calls.example/")
    with Receiver(failures=1) as receiver:
        webhook = Webhook(receiver.url, SECRET)
        first = deliver_due(store, webhook, NOW)
        assert (first.delivered, first.failed) == (0, 1)
        assert len(receiver.attempts) == 1
        assert deliver_due(store, webhook, NOW + timedelta(seconds=9)).delivered == 0
        assert len(receiver.attempts) == 1  # not before the backoff
        second = deliver_due(store, webhook, NOW + timedelta(seconds=10))
        assert (second.delivered, second.failed) == (1, 0)
        assert deliver_due(store, webhook, NOW + timedelta(hours=1)).delivered == 0  # once
        assert len(receiver.attempts) == 2
    for headers, body in receiver.attempts:
        assert headers["Content-Type"] == "application/json"
        assert verify(SECRET, headers[SIGNATURE_HEADER], body)
    (sent,) = receiver.delivered
    assert {k: sent[k] for k in ("rule", "state", "scope", "value", "threshold", "window")} == {
        "rule": "low-mos", "state": "firing", "scope": "to=+18005550002", "value": 2.8,
        "threshold": 3.5, "window": "15m",
    }  # fmt: skip
    assert sent["started_at"] == NOW.isoformat()
    assert sent["dashboard_url"] == "http://calls.example/"
    assert sent["text"].startswith("[FIRING] low-mos")
    with store.alert_book() as book:
        assert book is not None
        (item,) = book.outbox()
        assert (item.attempts, item.last_error) == (2, None)
        assert item.delivered_at == NOW + timedelta(seconds=10)


def test_unsigned_without_a_secret_and_errors_in_one_line() -> None:
    with Receiver() as receiver, httpx.Client() as client:
        Webhook(receiver.url).post(client, json.dumps({"text": "hi"}))
        ((headers, _body),) = receiver.attempts
        assert SIGNATURE_HEADER not in headers
    with (
        httpx.Client() as client,
        pytest.raises(CallpulseError, match=re.escape(f"webhook {DEAD}: ConnectError")),
    ):
        Webhook(DEAD).post(client, "{}")
