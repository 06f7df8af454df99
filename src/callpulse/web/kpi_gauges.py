"""The call center's figures on /metrics: last-hour KPIs and alert states, set at each scrape.

Apart from metrics.py, which the hot path imports, because these need analytics' results; they
join the shared registry when the web layer loads this module (metrics.KPI_FAMILIES names them).
"""

from __future__ import annotations

import math

from prometheus_client import Gauge

from callpulse import metrics
from callpulse.analytics.models import Totals

LAST_HOUR = Gauge(
    "callpulse_last_hour",
    "Call KPIs over the hour before the scrape (NaN when there is nothing to rate)",
    ["kpi"],
    multiprocess_mode="mostrecent",
    registry=metrics.REGISTRY,
)


ALERTS = Gauge(
    "callpulse_alerts",
    "Scopes of each alert rule in each state (ok, pending, firing) at the scrape",
    ["rule", "state"],
    multiprocess_mode="mostrecent",
    registry=metrics.REGISTRY,
)


def set_alerts(counts: dict[tuple[str, str], int]) -> None:
    ALERTS.clear()  # rules removed since the last scrape go
    for (rule, state), count in counts.items():
        ALERTS.labels(rule, state).set(count)


def set_last_hour(totals: Totals) -> None:
    values = {
        "calls": totals.calls,
        "completed": totals.completed,
        "failed": totals.failed,
        "success_rate": totals.success_rate,
        "mos_mean": totals.mos.mean,
        "mos_p50": totals.mos.p50,
        "poor_call_rate": totals.mos.poor_rate,
        "acd_seconds": totals.duration.acd_s,
        "short_call_rate": totals.short_call_rate,
    }
    for name, value in values.items():
        LAST_HOUR.labels(name).set(math.nan if value is None else value)
