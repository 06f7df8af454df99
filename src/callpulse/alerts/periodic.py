"""``serve``'s alert rounds every CALLPULSE_ALERT_INTERVAL_S and the webhook deliveries.

A daemon thread: a slow database or receiver never stalls the event loop, so ingest goes on;
rounds read through Analytics and write only the alert tables, never the calls."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from callpulse.alerts.engine import run_round
from callpulse.alerts.webhook import Webhook, deliver_due
from callpulse.analytics import Analytics
from callpulse.background import Background
from callpulse.config import Settings
from callpulse.errors import CallpulseError
from callpulse.store import Store

log = logging.getLogger("callpulse.alerts")
DELIVERY_TICK_S = 5.0  # how often due retries are looked for between rounds


def dashboard_url(settings: Settings) -> str:
    return f"{settings.public_url}/" if settings.public_url else ""


def webhook_of(settings: Settings) -> Webhook | None:
    if not settings.alert_webhook_url:
        return None
    return Webhook(settings.alert_webhook_url, settings.alert_webhook_secret)


class PeriodicAlerts(Background):
    def __init__(self, store: Store, analytics: Analytics, settings: Settings) -> None:
        super().__init__("callpulse-alerts")
        self.store, self.analytics, self.settings = store, analytics, settings
        self.interval_s = settings.alert_interval_s
        self.webhook = webhook_of(settings)

    @classmethod
    def from_settings(
        cls, store: Store, analytics: Analytics, settings: Settings
    ) -> PeriodicAlerts | None:
        """None when CALLPULSE_ALERT_INTERVAL_S is 0 or no rule is enabled."""
        if not settings.alert_interval_s or not any(r.enabled for r in settings.alerts):
            return None
        return cls(store, analytics, settings)

    def _run(self) -> None:
        tick = min(float(self.interval_s), DELIVERY_TICK_S)
        # The first round one interval after the start: a restart loop cannot evaluate (or
        # hammer the database) faster than the interval.
        next_round = datetime.now(UTC).timestamp() + self.interval_s
        with httpx.Client() as client:
            while not self._stopping.is_set():
                now = datetime.now(UTC)
                if now.timestamp() >= next_round:
                    next_round = now.timestamp() + self.interval_s
                    self._guarded("round", functools.partial(self._round, now))
                if self.webhook is not None:
                    deliver = functools.partial(deliver_due, self.store, self.webhook, now, client)
                    self._guarded("delivery", deliver)
                self._stopping.wait(tick)

    def _round(self, now: datetime) -> None:
        run_round(
            self.store,
            self.analytics,
            self.settings.alerts,
            now,
            dashboard_url(self.settings),
            queue=self.webhook is not None,
        )

    def _guarded(self, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except CallpulseError as exc:
            log.warning("alert %s failed, next try in %s s: %s", what, self.interval_s, exc)
        except Exception:  # a bug must not end the periodic rounds, nor pass unseen
            log.exception("alert %s failed", what)
