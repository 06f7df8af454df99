"""Firing a number's StatusCallback the way SignalWire does, and the log of every attempt.

Signed with the compatibility scheme (``X-SignalWire-Signature``); 2 s to connect and 5 s to
read; only a timeout is retried, for at most 3 attempts in all. A ``#ot=..&rt=..&tt=..`` fragment
on the URL (milliseconds: connect, read, total per attempt) overrides the timeouts, as on the real
service; it is never sent and never signed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urldefrag, urlencode

import httpx

from callpulse.signalwire.emulator.state import utcnow
from callpulse.signature import compatibility_signature

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0
MAX_ATTEMPTS = 3

DELIVERED = "delivered"
FAILED = "failed"
TIMED_OUT = "timed_out"
DROPPED = "dropped"
NO_CALLBACK = "no_callback"


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt; attempt 0 records a callback that was never sent."""

    call_sid: str
    url: str
    method: str
    attempt: int
    status_code: int | None
    error: str | None
    outcome: str
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


class DeliveryLog:
    """Every attempt, oldest first; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: list[Attempt] = []

    def add(self, attempt: Attempt) -> Attempt:
        with self._lock:
            self._attempts.append(attempt)
        return attempt

    def attempts(self, call_sid: str | None = None) -> list[Attempt]:
        with self._lock:
            return [a for a in self._attempts if call_sid in (None, a.call_sid)]


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float
    total: float | None

    @classmethod
    def from_fragment(cls, fragment: str) -> Timeouts:
        given = {name: int(ms) / 1000 for name, ms in parse_qsl(fragment) if ms.isdigit()}
        return cls(
            given.get("ot", CONNECT_TIMEOUT_S), given.get("rt", READ_TIMEOUT_S), given.get("tt")
        )


def signed_request(
    key: str, url: str, method: str, fields: Mapping[str, str]
) -> tuple[str, dict[str, str], bytes | None]:
    """(URL to call, headers, body) of a callback: form fields in a POST body, else the query."""
    if method == "GET":
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(list(fields.items()))}"
        return url, {"X-SignalWire-Signature": compatibility_signature(key, url)}, None
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-SignalWire-Signature": compatibility_signature(key, url, fields.items()),
    }
    return url, headers, urlencode(list(fields.items())).encode()


class Deliverer:
    """Sends callbacks with one shared HTTP client and records each attempt in ``log``."""

    def __init__(self, signing_key: str, log: DeliveryLog) -> None:
        self.signing_key = signing_key
        self.log = log
        self._client = httpx.AsyncClient(
            follow_redirects=False, headers={"User-Agent": "SignalWire-Callback/1.0"}
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def skip(self, call_sid: str, url: str, method: str, outcome: str) -> Attempt:
        return self.log.add(Attempt(call_sid, url, method, 0, None, None, outcome, utcnow()))

    async def deliver(
        self, call_sid: str, configured_url: str, method: str, fields: Mapping[str, str]
    ) -> Attempt:
        """Deliver until answered or out of attempts; the last attempt is the outcome."""
        url, fragment = urldefrag(configured_url)
        timeouts = Timeouts.from_fragment(fragment)
        target, headers, body = signed_request(self.signing_key, url, method, fields)
        timeout = httpx.Timeout(timeouts.read, connect=timeouts.connect)
        for number in range(1, MAX_ATTEMPTS + 1):
            status_code, error = None, None
            try:
                async with asyncio.timeout(timeouts.total):
                    response = await self._client.request(
                        method, target, headers=headers, content=body, timeout=timeout
                    )
                status_code = response.status_code
                outcome = DELIVERED if 200 <= status_code < 300 else FAILED
            except (httpx.TimeoutException, TimeoutError):
                error, outcome = "timed out", TIMED_OUT
            except httpx.HTTPError as exc:
                error, outcome = f"{type(exc).__name__}: {exc}", FAILED
            attempt = self.log.add(
                Attempt(call_sid, url, method, number, status_code, error, outcome, utcnow())
            )
            if outcome != TIMED_OUT:
                break
        return attempt
