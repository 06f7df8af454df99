"""`serve`'s migrations, on a thread of their own: the server answers at once, the writer spools
every callback while migrations are pending or running, and the spool goes into the database when
they are done. One process of many migrates (the dialect's migration lock); the others wait."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from callpulse.ingest.writer import BatchWriter
from callpulse.store.base import Store
from callpulse.store.errors import StoreUnavailable

log = logging.getLogger(__name__)
RETRY_S = 1.0  # the database down, or another process migrating (SQLite's lock timed out)


class Migration:
    """Where the schema is: ``done`` once every migration is applied (by this process or
    another); until then ``state`` and ``detail`` say why reads are refused."""

    def __init__(self, store: Store, writer: BatchWriter) -> None:
        self.store, self.writer = store, writer
        self.then: Callable[[], None] = lambda: None  # run once done (what needs the tables)
        self.state = "checking"  # checking, migrating, failed, done
        self.detail = ""
        self.done = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callpulse-migrate", daemon=True)

    def start(self) -> None:
        try:
            pending = self.store.pending_migrations()
        except StoreUnavailable as exc:  # not known yet: hold, the thread finds out
            pending, self.detail = ["?"], str(exc)
        if not pending:  # up to date: reads are served from the first request on
            self.state = "done"
            self.done.set()
            self.then()
            return
        self.writer.hold()
        self.state = "migrating"
        self.detail = f"{len(pending)} pending"
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # (a migration under way finishes: its transaction is atomic)

    def status(self) -> dict[str, str]:
        return {"schema": self.state, "migration": self.detail}

    def _progress(self, name: str, place: int, count: int) -> None:
        self.detail = f"applying {name} ({place} of {count})"
        log.warning("schema: %s", self.detail)

    def _run(self) -> None:
        began = time.monotonic()
        announced = waiting_logged = False
        while not self._stopping.is_set():
            try:
                if self.writer.held and not announced:
                    pending = self.store.pending_migrations()
                    log.warning(
                        "schema: migrating, %d pending (%s); callbacks go to the spool meanwhile",
                        len(pending),
                        ", ".join(pending),
                    )
                    announced = True
                applied = self.store.upgrade(self._progress)
                break
            except StoreUnavailable as exc:
                self.detail = f"waiting for the database: {exc}"
                if not waiting_logged:
                    log.warning("schema: %s (another process may be migrating)", self.detail)
                    waiting_logged = True
                self._stopping.wait(RETRY_S)
            except Exception as exc:  # the writer stays held: callbacks keep going to the spool
                self.state, self.detail = "failed", f"{type(exc).__name__}: {exc}"
                log.exception("schema: migration failed, callbacks stay in the spool")
                return
        else:
            return
        seconds = time.monotonic() - began
        if self.writer.held:
            by = f"applied {len(applied)}" if applied else "applied by another process"
            self.detail = f"done in {seconds:.1f} s ({by})"
            log.warning("schema: %s; moving the spool into the database", self.detail)
        self.state = "done"
        self.writer.release()
        self.done.set()
        if not self._stopping.is_set():
            self.then()


class WaitForSchema:
    """Middleware of the API: 503 in JSON until the schema is done, since its questions need
    the tables the migrations make."""

    def __init__(self, app: ASGIApp, migration: Migration) -> None:
        self.app, self.migration = app, migration

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.migration.done.is_set():
            response = JSONResponse(
                {
                    "error": f"the database schema is being migrated ({self.migration.detail}): "
                    "try again when /readyz answers ready",
                    "parameter": None,
                },
                status_code=503,
                headers={"Retry-After": "5"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
