"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from callpulse import metrics
from callpulse.alerts.overview import state_counts
from callpulse.alerts.rules import Rule
from callpulse.analytics import Analytics, Filters
from callpulse.ingest.writer import BatchWriter
from callpulse.store.errors import StoreUnavailable
from callpulse.web import kpi_gauges
from callpulse.web.auth import Access
from callpulse.web.migration import Migration


def _writer(request: Request) -> BatchWriter:
    writer: BatchWriter = request.app.state.writer
    return writer


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    writer = _writer(request)
    migration: Migration = request.app.state.migration
    if not migration.done.is_set():  # callbacks are taken (spooled); reads wait for the schema
        body = {"status": "migrating", **migration.status()}
        return JSONResponse({**body, "spool_depth": writer.spool.depth()}, status_code=503)
    try:
        await run_in_threadpool(request.app.state.analytics.store.ping)
    except StoreUnavailable as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc)}, status_code=503)
    if not writer.database_ok:
        return JSONResponse(
            {
                "status": "degraded",
                "database": "writes failing; callbacks go to the spool",
                "spool_depth": writer.spool.depth(),
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


def _refresh_gauges(
    writer: BatchWriter, analytics: Analytics, kpis: bool, rules: Sequence[Rule]
) -> None:
    metrics.SPOOL_DEPTH.set(writer.spool.depth())
    metrics.DATABASE_UP.set(1 if writer.database_ok else 0)
    try:
        kept, dropped = analytics.store.quarantine_counts()
        metrics.QUARANTINE_SIZE.set(kept)
        metrics.QUARANTINE_DROPPED.set(dropped)
        if kpis:  # a query over the last hour's calls: only for those who may see them
            now = datetime.now(UTC)
            kpi_gauges.set_last_hour(analytics.totals(now - timedelta(hours=1), now, Filters()))
            kpi_gauges.set_alerts(state_counts(analytics.store, rules))
    except StoreUnavailable:
        pass  # the database_up gauge already tells


def _shows_kpis(request: Request) -> bool:
    """The KPI gauges are business figures: for the API token (or an open local server)."""
    access: Access = request.app.state.access
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return access.is_open(request) or (
        scheme.lower() == "bearer" and access.token_matches(token.strip())
    )


async def metrics_endpoint(request: Request) -> Response:
    kpis = _shows_kpis(request)
    app = request.app.state
    await run_in_threadpool(
        _refresh_gauges, _writer(request), app.analytics, kpis, app.settings.alerts
    )
    return Response(metrics.exposition(kpis), media_type=CONTENT_TYPE_LATEST)
