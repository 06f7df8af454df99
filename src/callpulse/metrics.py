"""Prometheus metrics of the receiver."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

CALLBACKS = Counter(
    "callpulse_callbacks",
    "Status callbacks received, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "callpulse_callback_latency_seconds",
    "Time from request body received to answer, callback endpoint",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
SPOOL_DEPTH = Gauge(
    "callpulse_spool_depth",
    "Callbacks waiting in this process's local spool for the database",
    registry=REGISTRY,
)
QUARANTINE_SIZE = Gauge(
    "callpulse_quarantine_entries", "Requests kept in quarantine", registry=REGISTRY
)
QUARANTINE_DROPPED = Gauge(
    "callpulse_quarantine_dropped",
    "Quarantine entries removed by the size cap or retention",
    registry=REGISTRY,
)
DATABASE_UP = Gauge(
    "callpulse_database_up", "1 when the last database write succeeded", registry=REGISTRY
)
CALLS_STORED = Gauge("callpulse_calls_stored", "Calls in the database", registry=REGISTRY)
