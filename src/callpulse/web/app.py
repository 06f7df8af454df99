"""Builds the Starlette application from Settings; owns the store and writer lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from callpulse import metrics
from callpulse.alerts.periodic import PeriodicAlerts
from callpulse.analytics import Analytics
from callpulse.compaction import PeriodicCompaction
from callpulse.config import Settings, load_settings
from callpulse.ingest.gate import gate_for
from callpulse.ingest.pipeline import Ingestor
from callpulse.ingest.spool import Spool
from callpulse.ingest.writer import BatchWriter
from callpulse.logs import configure_logging
from callpulse.reconcile import PeriodicReconcile
from callpulse.store import open_store
from callpulse.web import health, http
from callpulse.web.access_log import AccessLog
from callpulse.web.api import create_api
from callpulse.web.auth import Access
from callpulse.web.dashboard import dashboard_routes
from callpulse.web.migration import Migration, WaitForSchema
from callpulse.web.receiver import CallbackReceiver

ALLOW_UNSIGNED_ENV = "CALLPULSE_ALLOW_UNSIGNED"


class CallpulseApp(Starlette):
    """Starlette, but the callback path's GET and POST go straight to the receiver, before the
    middleware stack and the router (its route stays, for HEAD, 405s and route listings)."""

    def __init__(self, receiver: CallbackReceiver, callback_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.receiver, self.callback_path = receiver, callback_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self.callback_path
            and scope["method"] in ("GET", "POST")
        ):
            await self.receiver(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings, allow_unsigned: bool = False) -> Starlette:
    reconciler = PeriodicReconcile.from_settings(settings)
    store = open_store(settings)
    writer = BatchWriter(store, Spool(settings.spool_dir), settings.writer_max_batch)
    ingestor = Ingestor(gate_for(settings, allow_unsigned), writer)
    access = Access(settings.api_token, allow_unsigned, settings.public_url, revocations=store)
    analytics = Analytics(store, settings)
    access_log = AccessLog(settings.access_log_per_s)
    alerting = PeriodicAlerts.from_settings(store, analytics, settings)
    compaction = PeriodicCompaction(store)
    migration = Migration(store, writer)
    api = create_api(analytics, access, settings.alerts)
    api.add_middleware(WaitForSchema, migration=migration)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def start_background() -> None:  # (they need the migrated tables)
            if reconciler is not None:
                reconciler.start(writer, loop)
            if alerting is not None:
                alerting.start()
            compaction.start()

        migration.then = start_background
        writer.start()
        migration.start()
        metrics.DATABASE_UP.set(1)
        # What exists now (modules, the app, settings) lives as long as the process: keep it out
        # of the cyclic GC, whose full collections otherwise stop the event loop for ~20 ms.
        gc.collect()
        gc.freeze()
        summaries = asyncio.create_task(access_log.summarize())
        try:
            yield
        finally:
            summaries.cancel()
            access_log.flush()
            migration.stop()
            if reconciler is not None:
                # Off the event loop: the reconcile thread's last batch needs the loop and the
                # writer to finish before it can stop.
                await asyncio.to_thread(reconciler.stop)
            if alerting is not None:
                await asyncio.to_thread(alerting.stop)
            await asyncio.to_thread(compaction.stop)
            writer.stop()
            store.close()

    receiver = CallbackReceiver(ingestor, settings.public_url, access_log)
    app = CallpulseApp(
        receiver,
        settings.callback_path,
        routes=[
            Route(settings.callback_path, receiver, methods=["GET", "POST"]),
            Route("/healthz", health.healthz),
            Route("/readyz", health.readyz),
            Route("/metrics", health.metrics_endpoint),
            Mount("/api/v1", app=api),
            *dashboard_routes(access, settings),
        ],
        exception_handlers={HTTPException: http.http_error, ClientDisconnect: http.client_gone},
        lifespan=lifespan,
    )
    # Starlette's trailing-slash redirect builds its Location from the Host header: a 404 instead.
    app.router.redirect_slashes = False
    app.state.writer = writer
    app.state.migration = migration
    app.state.access_log = access_log
    app.state.analytics = analytics
    app.state.access = access
    app.state.settings = settings
    return app


def app_from_environment() -> Starlette:
    """Factory for uvicorn worker processes: settings come from the environment."""
    settings = load_settings()
    configure_logging(settings.log_format)  # a worker process starts without any
    return create_app(settings, allow_unsigned=os.environ.get(ALLOW_UNSIGNED_ENV) == "1")
