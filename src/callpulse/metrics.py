"""Prometheus metrics of the receiver (the call center's figures: web/kpi_gauges.py).

With ``serve --workers N`` every process writes its values under PROMETHEUS_MULTIPROC_DIR and
any worker's ``/metrics`` answers for all of them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from callpulse.callback import DOCUMENTED_FIELDS, Problem
from callpulse.store.base import SaveResult

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REGISTRY = CollectorRegistry()

# Every outcome the endpoint counts: what the store did, a store outage, or why a request was
# rejected (the reasons of ingest/gate.py's Rejected).
OUTCOMES = (
    *(result.value for result in SaveResult),
    "unavailable",
    "too_large",
    "unsupported",
    "signature",
    "invalid",
)

CALLBACKS = Counter(
    "callpulse_callbacks",
    "Status callbacks received, by outcome",
    ["outcome"],
    registry=REGISTRY,
)


@functools.cache
def outcome(name: str) -> Counter:
    """The outcome's counter child, looked up once: labels() takes a lock on every call."""
    return CALLBACKS.labels(name)


DATA_PROBLEMS = Counter(
    "callpulse_data_problems",
    "Fields of stored callbacks that could not be taken as sent, by field",
    ["field"],
    registry=REGISTRY,
)


_COUNTED_FIELDS = frozenset({*DOCUMENTED_FIELDS, "signature"})
PROBLEM_FIELDS = (*sorted(_COUNTED_FIELDS), "other")


def count_problems(problems: Iterable[Problem]) -> None:
    for problem in problems:
        # Known fields by name, "signature" for bodies it did not cover; the rest (invalid text
        # in extra fields) as one label.
        name = problem.field if problem.field in _COUNTED_FIELDS else "other"
        DATA_PROBLEMS.labels(name).inc()


CALLS = Counter(
    "callpulse_calls",
    "Calls accepted for storage (inserted, or spooled while the database is down), by status",
    ["status"],
    registry=REGISTRY,
)
# Success rate is completed / (completed + failed); every other status counts as other, so the
# label set stays fixed whatever a sender puts in CallStatus.
CALL_STATUSES = ("completed", "failed", "other")


def count_call(status: str) -> None:
    CALLS.labels(status if status in CALL_STATUSES else "other").inc()


LATENCY = Histogram(
    "callpulse_callback_latency_seconds",
    "Time from request body received to answer, callback endpoint",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
SPOOL_DEPTH = Gauge(
    "callpulse_spool_depth",
    "Callbacks waiting in the local spool for the database",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
QUARANTINE_SIZE = Gauge(
    "callpulse_quarantine_entries",
    "Requests kept in quarantine",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
QUARANTINE_DROPPED = Gauge(
    "callpulse_quarantine_dropped",
    "Quarantine entries removed by the size cap or retention",
    multiprocess_mode="mostrecent",
    registry=REGISTRY,
)
QUARANTINE_SHED = Counter(
    "callpulse_quarantine_shed",
    "Rejected requests not kept in quarantine: the writer's buffer for them was full",
    registry=REGISTRY,
)
COMPACTED_UNTIL = Gauge(
    "callpulse_rollups_compacted_until_seconds",
    "Up to when the hour, day and week rollups hold the calls (epoch seconds); after it the "
    "minute rollups only, until compaction: about ten minutes behind the clock",
    multiprocess_mode="max",
    registry=REGISTRY,
)
DATABASE_UP = Gauge(
    "callpulse_database_up",
    "1 when the last database write succeeded",
    multiprocess_mode="livemin",
    registry=REGISTRY,
)


# Business figures, for holders of the API token only; the rest is operational. Calls by status
# tell the success rate, so they are business figures too. The last-hour KPIs and alert states
# are gauges of web/kpi_gauges.py, set at the scrape: the hot path never imports analytics.
KPI_FAMILIES = frozenset({"callpulse_last_hour", "callpulse_calls", "callpulse_alerts"})


def _zero_every_label() -> None:
    """Every labelled counter's children exist from the start, at 0: a first scrape already has
    them, so rate() counts the first increment and "none yet" reads 0, not absent."""
    for name in OUTCOMES:
        outcome(name)
    for field_name in PROBLEM_FIELDS:
        DATA_PROBLEMS.labels(field_name)
    for status in CALL_STATUSES:
        CALLS.labels(status)


_zero_every_label()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        pass
    return True


def forget_dead_workers(path: str) -> None:
    """Drop the live gauges of worker processes that are gone, so a crashed worker's last spool
    depth or ``database_up 0`` does not stay in the sums for ever; its counters stay."""
    for name in os.listdir(path):
        if name.startswith("gauge_live") and name.endswith(".db"):
            pid = name.removesuffix(".db").rpartition("_")[2]
            if pid.isdigit() and not _alive(int(pid)):
                mark_process_dead(int(pid), path)  # type: ignore[no-untyped-call]


class _Without(Collector):
    """A registry's families except the named ones."""

    def __init__(self, registry: CollectorRegistry, names: frozenset[str]) -> None:
        self.registry = registry
        self.names = names

    def collect(self) -> Iterable[Metric]:
        return (family for family in self.registry.collect() if family.name not in self.names)


def exposition(kpis: bool = True) -> bytes:
    """All metrics, or with ``kpis=False`` the operational ones only (no KPI_FAMILIES)."""
    registry = REGISTRY
    if path := os.environ.get(MULTIPROC_ENV):
        forget_dead_workers(path)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry if kpis else _Without(registry, KPI_FAMILIES))
