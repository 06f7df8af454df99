"""Sends queued notifications to CALLPULSE_ALERT_WEBHOOK_URL, signed, with exponential backoff.

Each attempt first claims its outbox row for ``LEASE``, so of several processes one sends it;
a receiver that fails (an error status, a timeout, no connection) gets it again later."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from callpulse.alerts.notify import SIGNATURE_HEADER, signature
from callpulse.errors import CallpulseError
from callpulse.store.protocols import AlertTables

FIRST_RETRY = timedelta(seconds=10)
LONGEST_RETRY = timedelta(hours=1)
LEASE = timedelta(seconds=60)  # longer than an attempt can take (TIMEOUT_S)
TIMEOUT_S = 10.0


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 10 s, 20 s, 40 s, ... up to an hour."""
    doubling: int = 2 ** min(max(attempts - 1, 0), 20)
    return min(FIRST_RETRY * doubling, LONGEST_RETRY)


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str = ""

    def post(self, client: httpx.Client, body: str, unix_time: int | None = None) -> None:
        """One attempt; raises CallpulseError (one line) unless the receiver answers 2xx."""
        data = body.encode()
        headers = {"Content-Type": "application/json", "User-Agent": "callpulse-alerts"}
        if self.secret:
            t = int(time.time()) if unix_time is None else unix_time
            headers[SIGNATURE_HEADER] = signature(self.secret, t, data)
        try:
            # Streamed and never read: whatever the receiver answers, only its status counts.
            with client.stream(
                "POST", self.url, content=data, headers=headers, timeout=TIMEOUT_S
            ) as response:
                status = response.status_code
        except httpx.HTTPError as exc:
            raise CallpulseError(f"webhook {self.url}: {type(exc).__name__}: {exc}") from None
        if not 200 <= status < 300:
            raise CallpulseError(f"webhook {self.url}: answered {status}")


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0


def deliver_due(
    store: AlertTables, webhook: Webhook, now: datetime, client: httpx.Client | None = None
) -> DeliveryReport:
    report = DeliveryReport()
    with store.alert_book(read_only=True) as book:
        assert book is not None
        due = book.due(now)
    owned = client is None
    http = client or httpx.Client()
    try:
        for item in due:
            with store.alert_book() as book:
                assert book is not None
                if not book.claim(item.id, now, now + LEASE):
                    continue  # another process sends this one
            try:
                webhook.post(http, item.body)
            except CallpulseError as exc:
                with store.alert_book() as book:
                    assert book is not None
                    book.failed(item.id, now + backoff(item.attempts + 1), str(exc))
                report.failed += 1
                continue
            with store.alert_book() as book:
                assert book is not None
                book.delivered(item.id, now)
            report.delivered += 1
    finally:
        if owned:
            http.close()
    return report
