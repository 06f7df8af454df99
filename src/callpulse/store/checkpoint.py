"""Checkpoints of the SQLite WAL, kept off the writer's commits."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable

from callpulse.store.errors import StoreUnavailable

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.5  # (more often, its fsyncs of the database slow the writer's commits)
# Under steady load a PASSIVE checkpoint never finds a moment without a writer, so SQLite never
# starts the WAL over and the file grows without bound; past this many frames (4 KiB pages, so
# 1 GiB) the writer thread restarts it between two batches and the file is cut back to this
# size. That pause lasts tens of ms: rare enough at this size (every ~15 s at full speed, never
# at a few calls a second, when the WAL starts over by itself).
WAL_RESTART_FRAMES = 262144


class Checkpointer(threading.Thread):
    """Copies the WAL back into the database off the writer thread.

    SQLite's automatic checkpoint runs inside a committing transaction, so its fsync of the
    database file would land on the latency of whichever callbacks that batch carries. Only
    the cutting back of a long WAL (RESTART) is left to the writer thread, between two batches:
    done here it would hold the write lock while the writer sleeps in SQLite's busy handler,
    whose waits grow to 100 ms.
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(name="callpulse-checkpoint", daemon=True)
        self._connect = connect
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # one checkpoint at a time, waited for in Python
        self.restart_wanted = False

    def run(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self.stopping.wait(CHECKPOINT_INTERVAL_S):
            try:
                conn = conn or self._connect()
                with self.lock:
                    _busy, frames, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.restart_wanted = frames > WAL_RESTART_FRAMES
            except (sqlite3.Error, StoreUnavailable):
                conn = None  # the writer reports outages; try again next round
        if conn is not None:
            conn.close()

    def restart_if_wanted(self, writer: sqlite3.Connection, busy_timeout_ms: int) -> None:
        """On the writer thread, outside a transaction: start the WAL over once it is long.

        Never waits: not for a PASSIVE checkpoint copying pages, nor for a reader (a long query,
        a backup) still using the WAL; the next batch tries again. A failure here concerns the
        WAL's length only, never the batch just committed."""
        if not self.restart_wanted or not self.lock.acquire(blocking=False):
            return
        try:
            writer.execute("PRAGMA busy_timeout=0")
            busy, _frames, _done = writer.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            self.restart_wanted = busy != 0
        except sqlite3.Error as exc:
            log.warning("could not start the WAL over, will try again: %s", exc)
        finally:
            with contextlib.suppress(sqlite3.Error):
                writer.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            self.lock.release()
