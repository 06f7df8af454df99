"""The single writer thread: group commit for many waiting requests, spool when the DB fails."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from callpulse import metrics
from callpulse.ingest import quarantine
from callpulse.ingest.spool import Spool
from callpulse.store.base import CallWrite, QuarantineWrite, SaveResult, WriteOp
from callpulse.store.errors import StoreRefused, StoreUnavailable
from callpulse.store.protocols import CallWriter
from callpulse.store.quarantine import bounded, entry_size

log = logging.getLogger(__name__)
DRAIN_RETRY_S = 1.0
QUARANTINE_BUFFER_BYTES = 4 * 1024 * 1024  # rejected requests waiting for the writer
QUARANTINE_TURN_BYTES = 1024 * 1024  # written per turn, so a call arriving meanwhile waits little
_WAKE = "wake"  # queued when rejected requests arrive while the writer may be waiting

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
    """Calls are group-committed in arrival order. Rejected requests take a separate, bounded
    buffer: their answer does not wait for them, and the writer stores them in small
    transactions of their own only while no call is waiting, so junk never delays a call."""

    def __init__(
        self,
        store: CallWriter,
        spool: Spool,
        max_batch: int = 512,
        quarantine_buffer_bytes: int = QUARANTINE_BUFFER_BYTES,
    ) -> None:
        self.store = store
        self.spool = spool
        self.max_batch = max_batch
        self.database_ok = True
        # While set (a migration is pending or running), every write goes to the spool and
        # nothing is drained: the tables may not have their new shape yet.
        self.held = False
        self.batches = 0
        self.quarantine_shed = 0  # rejected requests not kept: the buffer was full
        self._queue: queue.SimpleQueue[_Item | str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="callpulse-writer", daemon=True)
        self._last_drain_try = 0.0
        self._rejects: deque[tuple[QuarantineWrite, int]] = deque()
        self._rejects_bytes = 0
        self._rejects_max = quarantine_buffer_bytes
        self._rejects_lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def hold(self) -> None:
        """Spool every write from now on, without touching the database."""
        self.held = True

    def release(self) -> None:
        """Write to the database again; the spool is drained first, at once."""
        self.held = False
        self._last_drain_try = 0.0
        self._queue.put(_WAKE)

    def stop(self) -> None:
        """Write everything queued, then the rejected requests still buffered."""
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

    def quarantine(self, entry: QuarantineWrite) -> bool:
        """Keep a rejected request, without waiting: False when the buffer is full and the
        entry is dropped (counted in ``quarantine_shed`` and callpulse_quarantine_shed)."""
        entry = bounded(entry, self.store.quarantine_max_body_bytes)
        size = entry_size(entry)
        with self._rejects_lock:
            if self._rejects_bytes + size > self._rejects_max:
                self.quarantine_shed += 1
                metrics.QUARANTINE_SHED.inc()
                return False
            wake = not self._rejects
            self._rejects.append((entry, size))
            self._rejects_bytes += size
        if wake:
            self._queue.put(_WAKE)
        return True

    def quarantine_pending(self) -> int:
        """Rejected requests buffered, not yet stored."""
        with self._rejects_lock:
            return len(self._rejects)

    def _rejects_ready(self) -> bool:
        """Buffered rejects may be written now: the database took the last write (or a retry
        is due) and nothing is spooled (while calls are, the spool drain goes first)."""
        if not self._rejects or self.held or self.spool.has_pending():
            return False
        return self.database_ok or time.monotonic() - self._last_drain_try >= DRAIN_RETRY_S

    def _run(self) -> None:
        stopping = False
        while not stopping:
            rejects = self._rejects_ready()
            waiting = self.spool.has_pending() or bool(self._rejects)
            try:
                if rejects:
                    first = self._queue.get_nowait()  # calls first: rejects only when idle
                else:
                    first = self._queue.get(timeout=DRAIN_RETRY_S if waiting else None)
            except queue.Empty:
                if rejects:
                    self._write_rejects()
                elif self.spool.has_pending():
                    self._try_drain()
                continue
            if first is None:
                break
            if isinstance(first, str):  # a wake-up: rejects are looked at on the next round
                if self.spool.has_pending():
                    self._try_drain()  # (released after a migration: the spool goes in first)
                continue
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                if isinstance(item, str):
                    continue
                batch.append(item)
            try:
                outcomes = self._write([item.op for item in batch])
            except Exception as exc:  # a bug must fail these requests, not kill the writer
                log.exception("writer failed on a batch of %d", len(batch))
                outcomes = [StoreUnavailable(f"internal error: {exc}")] * len(batch)
            self._deliver(batch, outcomes)
        if self.spool.has_pending():
            self._try_drain(force=True)
        self._flush_rejects()

    def _take_rejects(self, limit: int) -> list[QuarantineWrite]:
        taken: list[QuarantineWrite] = []
        with self._rejects_lock:
            size = 0
            while self._rejects and (not taken or size + self._rejects[0][1] <= limit):
                entry, entry_bytes = self._rejects.popleft()
                taken.append(entry)
                size += entry_bytes
            self._rejects_bytes -= size
        return taken

    def _give_back(self, entries: list[QuarantineWrite]) -> None:
        with self._rejects_lock:
            for entry in reversed(entries):
                size = entry_size(entry)
                self._rejects.appendleft((entry, size))
                self._rejects_bytes += size

    def _write_rejects(self) -> bool:
        """One turn: up to QUARANTINE_TURN_BYTES of buffered rejects in their own transaction.
        False (and the entries back in the buffer) when the database is unavailable."""
        entries = self._take_rejects(QUARANTINE_TURN_BYTES)
        if not entries:
            return True
        try:
            self._store(entries, draining=True)  # one the database refuses is logged, dropped
        except StoreUnavailable as exc:
            self._give_back(entries)
            self._mark_down(exc)
            return False
        self.database_ok = True
        return True

    def _flush_rejects(self) -> None:
        """On stop: store what is buffered; what the database cannot take now goes to the spool."""
        while self._rejects:
            if self.held or self.spool.has_pending() or not self._write_rejects():
                rest = self._take_rejects(self._rejects_max + 1)
                try:
                    self.spool.append(rest)
                except OSError as exc:
                    log.error("%d quarantine entries lost: %s", len(rest), exc)
                return

    def _write(self, ops: Sequence[WriteOp]) -> Sequence[Outcome]:
        self.batches += 1
        if self.spool.has_pending():
            self._try_drain()
        if not self.held and not self.spool.has_pending():  # spooled first: arrival order
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
        entry = quarantine.refused(op, exc, by_database=isinstance(exc, _REFUSALS))
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
        if self.held or (not force and time.monotonic() - self._last_drain_try < DRAIN_RETRY_S):
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
