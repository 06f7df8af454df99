"""Backfill from the Calls API: every finished inbound call the receiver never got a callback for.

SignalWire sends callbacks best-effort (three attempts on timeouts, then silence), so the Calls API
is the record of truth. Reconciled calls are written with ``source="reconciled"``; the store never
lets such a write change a call it already has, so running this again, or racing a late callback,
is harmless.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from callpulse.callback import CallbackError, CallRecord, parse_callback
from callpulse.config import Settings
from callpulse.errors import CallpulseError
from callpulse.ingest.writer import BatchWriter
from callpulse.signalwire.client import ApiCall, CompatibilityClient, rfc2822
from callpulse.store.base import RECONCILED, CallWrite, SaveResult

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"completed", "failed"})  # the statuses the status callback reports
WINDOW = timedelta(hours=1)
# Whether StartTime> / StartTime< include their bound is undocumented: windows overlap, and a
# call seen in two of them is counted once.
OVERLAP = timedelta(minutes=1)
BATCH_SIZE = 500
CATCH_UP = timedelta(hours=24)  # serve's first run: what may have been missed before it started
# A call is listed as finished only once it ends, by its start time: look back this far.
LONGEST_CALL = timedelta(hours=6)

Write = Callable[[Sequence[CallWrite]], Sequence[SaveResult]]


@dataclass
class ReconcileSummary:
    seen: int = 0
    finished_inbound: int = 0
    unreadable: int = 0  # finished inbound calls whose fields fail the callback's validation
    results: Counter[SaveResult] = field(default_factory=Counter)

    @property
    def inserted(self) -> int:
        return self.results[SaveResult.INSERTED]

    @property
    def already_stored(self) -> int:
        return self.results[SaveResult.DUPLICATE]


def windows(
    since: datetime, until: datetime, width: timedelta = WINDOW, overlap: timedelta = OVERLAP
) -> list[tuple[datetime, datetime]]:
    """``[since, until]`` cut into windows of ``width``, each overlapping the one before."""
    if overlap >= width:
        raise ValueError("the overlap must be shorter than the window")
    cuts = [(since, min(since + width, until))]
    while cuts[-1][1] < until:
        start = cuts[-1][1] - overlap
        cuts.append((start, min(start + width, until)))
    return cuts


def is_finished_inbound(call: ApiCall) -> bool:
    return call.direction == "inbound" and call.status in FINAL_STATUSES


def record_of(call: ApiCall, account_sid: str, received_at: datetime) -> CallRecord:
    """The call as its status callback would have carried it, validated and normalised by the
    callback's own parser (withheld callers, E.164, ranges)."""
    fields = {
        "CallSid": call.sid,
        "AccountSid": call.account_sid or account_sid,
        "From": call.from_,
        "To": call.to,
        "Timestamp": "" if call.start_time is None else rfc2822(call.start_time),
        "CallStatus": call.status,
    }
    # What the API leaves out stays out: the parser's rules (and problems) as for a callback.
    if call.duration_s is not None:
        fields["CallDuration"] = str(call.duration_s)
    if call.mos is not None:
        fields["AudioInMos"] = repr(call.mos)
    return parse_callback(fields, received_at)


def calls_in(
    client: CompatibilityClient,
    since: datetime,
    until: datetime,
    on_window: Callable[[], None] | None = None,
) -> Iterator[ApiCall]:
    """Every call that started in ``[since, until]``, once, window by window."""
    previous: set[str] = set()
    for start, end in windows(since, until):
        current: set[str] = set()
        for call in client.iter_calls(since=start, until=end):
            # A call is in at most two neighbouring windows: remembering those two is enough.
            fresh = call.sid not in previous and call.sid not in current
            current.add(call.sid)
            if fresh:
                yield call
        previous = current
        if on_window is not None:
            on_window()


def reconcile(
    client: CompatibilityClient,
    write: Write,
    since: datetime,
    until: datetime,
    *,
    on_window: Callable[[ReconcileSummary], None] | None = None,
    stopping: threading.Event | None = None,
    batch_size: int = BATCH_SIZE,
) -> ReconcileSummary:
    """Write every finished inbound call that started in ``[since, until]`` as reconciled."""
    summary = ReconcileSummary()
    pending: list[CallWrite] = []

    def flush() -> None:
        summary.results.update(write(pending))
        pending.clear()

    def window_done() -> None:
        if on_window is not None:
            on_window(summary)

    for call in calls_in(client, since, until, window_done):
        if stopping is not None and stopping.is_set():
            break
        summary.seen += 1
        if not is_finished_inbound(call):
            continue
        summary.finished_inbound += 1
        received_at = datetime.now(UTC)
        try:
            record = record_of(call, client.project_id, received_at)
        except CallbackError as exc:
            summary.unreadable += 1
            log.warning("call %s from the Calls API is not stored: %s", call.sid, exc)
            continue
        pending.append(CallWrite(record, received_at=received_at, source=RECONCILED))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return summary


class PeriodicReconcile:
    """``serve``'s background reconcile every ``interval_s`` seconds.

    It runs on a daemon thread, so a slow API never stalls the event loop or holds up shutdown;
    its writes go through the server's writer, in one group commit per batch."""

    def __init__(self, client: CompatibilityClient, interval_s: int, lock_path: Path) -> None:
        self.client, self.interval_s, self.lock_path = client, interval_s, lock_path
        self._lock_file: IO[str] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callpulse-reconcile", daemon=True)
        self._writer: BatchWriter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PeriodicReconcile | None:
        """None when ``reconcile_interval_s`` is 0; an error now if credentials are missing."""
        if not settings.reconcile_interval_s:
            return None
        try:
            client = CompatibilityClient.from_environment()
        except CallpulseError as exc:
            raise CallpulseError(
                f"CALLPULSE_RECONCILE_INTERVAL_S={settings.reconcile_interval_s} needs access to "
                f"the Calls API (or set it to 0): {exc}"
            ) from None
        return cls(client, settings.reconcile_interval_s, settings.spool_dir / "reconcile.lock")

    def start(self, writer: BatchWriter, loop: asyncio.AbstractEventLoop) -> None:
        self._writer, self._loop = writer, loop
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the page in flight; the writer must still run until this returns."""
        self._stopping.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self.client.close()
            if self._lock_file is not None:
                self._lock_file.close()  # another process may take over

    def _is_the_one(self) -> bool:
        """Of the workers of one ``serve --workers N`` (same spool folder), one reconciles: the
        one holding the lock file, for as long as it lives; the others keep checking."""
        if self._lock_file is None:
            try:
                self.lock_path.parent.mkdir(parents=True, exist_ok=True)
                handle = self.lock_path.open("a")
            except OSError as exc:
                log.warning("reconcile waits: cannot open %s: %s", self.lock_path, exc)
                return False
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:  # held by another worker (or no locks on this file system)
                handle.close()
                if not isinstance(exc, BlockingIOError):
                    log.warning("reconcile waits: cannot lock %s: %s", self.lock_path, exc)
                return False
            self._lock_file = handle
        return True

    def _run(self) -> None:
        last_until: datetime | None = None
        while not self._stopping.is_set():
            if not self._is_the_one():
                self._stopping.wait(self.interval_s)
                continue
            until = datetime.now(UTC)
            since = (last_until or until - CATCH_UP) - LONGEST_CALL
            try:
                summary = reconcile(self.client, self._write, since, until, stopping=self._stopping)
            except CallpulseError as exc:
                log.warning("reconcile failed, next try in %d s: %s", self.interval_s, exc)
            except Exception:  # a bug must not end the periodic runs, nor pass unseen
                log.exception("reconcile failed")
            else:
                last_until = until
                if summary.inserted:
                    log.warning(
                        "reconcile: stored %d calls whose callbacks never arrived", summary.inserted
                    )
            self._stopping.wait(self.interval_s)

    def _write(self, ops: Sequence[CallWrite]) -> list[SaveResult]:
        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(self._submit(ops), self._loop).result()

    async def _submit(self, ops: Sequence[CallWrite]) -> list[SaveResult]:
        assert self._writer is not None, "start() first"
        return list(await asyncio.gather(*(self._writer.submit(op) for op in ops)))
