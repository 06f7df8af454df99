"""The single writer thread: group commit for many waiting requests, spool when the DB fails."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from urllib.parse import urlencode

from callpulse.callback import to_fields
from callpulse.store.base import (
    CallWrite,
    QuarantineWrite,
    SaveResult,
    Store,
    StoreRefused,
    StoreUnavailable,
    WriteOp,
)
from callpulse.store.spool import Spool

log = logging.getLogger(__name__)
DRAIN_RETRY_S = 1.0

Outcome = SaveResult | BaseException
# What a store raises for one value it cannot hold: StoreRefused, or the Python-side errors a
# driver raises before the value reaches the database (an int too large, a lone surrogate).
_REFUSALS = (StoreRefused, ValueError, ArithmeticError)


@dataclass(slots=True)
class _Item:
    op: WriteOp
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[SaveResult] | Future[SaveResult]


def _settle(future: asyncio.Future[SaveResult] | Future[SaveResult], outcome: Outcome) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _settle_all(pairs: list[tuple[asyncio.Future[SaveResult], Outcome]]) -> None:
    for future, outcome in pairs:
        _settle(future, outcome)


class BatchWriter:
    def __init__(self, store: Store, spool: Spool, max_batch: int = 512) -> None:
        self.store = store
        self.spool = spool
        self.max_batch = max_batch
        self.database_ok = True
        self.batches = 0
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="callpulse-writer", daemon=True)
        self._last_drain_try = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    async def submit(self, op: WriteOp) -> SaveResult:
        """Store ``op`` durably; raises StoreUnavailable when neither DB nor spool can take it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SaveResult] = loop.create_future()
        self._queue.put(_Item(op, loop, future))
        return await future

    def submit_sync(self, op: WriteOp) -> SaveResult:
        future: Future[SaveResult] = Future()
        self._queue.put(_Item(op, None, future))
        return future.result()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            timeout = DRAIN_RETRY_S if self.spool.has_pending() else None
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._try_drain()
                continue
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                outcomes = self._write([item.op for item in batch])
            except Exception as exc:  # a bug must fail these requests, not kill the writer
                log.exception("writer failed on a batch of %d", len(batch))
                outcomes = [StoreUnavailable(f"internal error: {exc}")] * len(batch)
            self._deliver(batch, outcomes)
        if self.spool.has_pending():
            self._try_drain(force=True)

    def _write(self, ops: Sequence[WriteOp]) -> Sequence[Outcome]:
        self.batches += 1
        if self.spool.has_pending():
            self._try_drain()
        if not self.spool.has_pending():  # while anything is spooled, keep arrival order
            try:
                results = self._store(ops)
                self.database_ok = True
                return results
            except StoreUnavailable as exc:
                self._mark_down(exc)
        try:
            self.spool.append(ops)
        except OSError as exc:
            log.error("spool %s cannot take callbacks either: %s", self.spool.directory, exc)
            failure = StoreUnavailable(f"database and spool both failed: {exc}")
            return [failure] * len(ops)
        return [SaveResult.SPOOLED] * len(ops)

    def _store(self, ops: Sequence[WriteOp], draining: bool = False) -> list[Outcome]:
        """Write ``ops``; an op that fails for any reason but an outage is isolated (the batch is
        split until it stands alone), so a single odd value never fails the innocent callbacks
        of its batch, nor blocks the spool behind it.

        An op the database refuses (or one with a value it cannot even be handed) is quarantined
        as ``refused``; any other failure of a lone op is a bug, answered 503 so the sender
        retries, except while draining the spool, where nobody waits: it is quarantined too."""
        try:
            return list(self.store.write_batch(ops))
        except StoreUnavailable:
            raise
        except Exception as exc:
            if len(ops) > 1:
                half = len(ops) // 2
                return [*self._store(ops[:half], draining), *self._store(ops[half:], draining)]
            if isinstance(exc, _REFUSALS) or draining:
                if not isinstance(exc, _REFUSALS):
                    log.exception("writer failed on a spooled write; kept in quarantine")
                self._quarantine_refused(ops[0], exc)
                return [SaveResult.REFUSED]
            log.exception("writer failed on a write")
            return [StoreUnavailable(f"internal error: {exc}")]

    def _drain_write(self, ops: Sequence[WriteOp]) -> list[Outcome]:
        return self._store(ops, draining=True)

    def _quarantine_refused(self, op: WriteOp, exc: Exception) -> None:
        if not isinstance(op, CallWrite):
            log.error("quarantine entry refused by the database, dropped: %s", exc)
            return
        # A value the database cannot take may not even encode: shown escaped, never raised.
        body = urlencode(to_fields(op.record), errors="backslashreplace").encode()
        entry = QuarantineWrite(
            received_at=op.received_at,
            reason="refused",
            errors={"database": str(exc)},
            method="POST",
            url="",
            headers={"content-type": "application/x-www-form-urlencoded"},
            body=body,
            body_size=len(body),
        )
        try:
            self.store.write_batch([entry])
        except Exception as again:  # noqa: BLE001 - logged; the writer goes on
            log.error("call %s refused and not quarantined: %s", op.record.call_sid, again)

    def _mark_down(self, exc: StoreUnavailable) -> None:
        if self.database_ok:
            log.error("database unavailable, spooling to %s: %s", self.spool.directory, exc)
        self.database_ok = False
        self._last_drain_try = time.monotonic()

    def _try_drain(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_drain_try < DRAIN_RETRY_S:
            return
        self._last_drain_try = time.monotonic()
        try:
            moved = self.spool.drain(self._drain_write)
        except StoreUnavailable as exc:
            self._mark_down(exc)
        except OSError as exc:
            log.error("spool %s unreadable: %s", self.spool.directory, exc)
        else:
            if moved:
                log.warning("database back: moved %d spooled writes into it", moved)
            self.database_ok = True

    @staticmethod
    def _deliver(batch: list[_Item], outcomes: Sequence[Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[SaveResult], Outcome]]]
        by_loop = defaultdict(list)
        for item, outcome in zip(batch, outcomes, strict=True):
            if item.loop is None:
                _settle(item.future, outcome)
            else:
                by_loop[item.loop].append((item.future, outcome))  # type: ignore[arg-type]
        for loop, pairs in by_loop.items():  # one wake-up per loop per batch, not per request
            loop.call_soon_threadsafe(_settle_all, pairs)
