"""``serve``'s rollup compaction: every ``interval_s`` the minutes that finished more than
COMPACT_LAG_MS ago are summed into the coarser levels, on a thread of its own, off the ingest
path (the writer's transactions upsert minutes only). Every process may run one: one
compaction at a time goes through (BEGIN IMMEDIATE; on PostgreSQL the compaction lock), the
others find nothing left to do."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from callpulse import metrics
from callpulse.background import Background
from callpulse.errors import CallpulseError
from callpulse.store.base import Store
from callpulse.store.rollups import COMPACT_LAG_MS

log = logging.getLogger("callpulse.rollups")
COMPACT_INTERVAL_S = 60.0


class PeriodicCompaction(Background):
    def __init__(
        self,
        store: Store,
        interval_s: float = COMPACT_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("callpulse-compaction")
        self.store, self.interval_s, self.clock = store, interval_s, clock

    def compact(self) -> int:
        """One round; returns compacted_until as it then stands (callpulse_rollups_compacted_
        until_seconds: a stalled compaction shows as a gauge falling behind the clock)."""
        until = self.store.compact_rollups(int(self.clock() * 1000) - COMPACT_LAG_MS)
        metrics.COMPACTED_UNTIL.set(until / 1000)
        return until

    def _run(self) -> None:
        while True:  # the first round at once: a server down for a while catches up first
            try:
                self.compact()
            except CallpulseError as exc:
                log.warning("rollup compaction failed, next try in %s s: %s", self.interval_s, exc)
            except Exception:  # a bug must not end the rounds, nor pass unseen
                log.exception("rollup compaction failed")
            if self._stopping.wait(self.interval_s):
                return
