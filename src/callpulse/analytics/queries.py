"""The questions about one time range, planned: which rollup levels and raw spans answer each
(``plan.py``), and which filters they can take; the store answers each in one statement."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from callpulse.analytics.models import Filters
from callpulse.analytics.plan import RAW, Segment, plan
from callpulse.store.protocols import AnalyticsReads
from callpulse.store.reads import CallFilter, Counters, Histograms
from callpulse.store.rollups import LEVELS

HOUR_MS = LEVELS["hour"]

__all__ = ["HOUR_MS", "Counters", "Histograms", "RangeQuery", "call_filter"]


def call_filter(filters: Filters) -> CallFilter:
    return CallFilter(filters.account_sid, filters.to, filters.region, filters.caller)


class RangeQuery:
    """Questions about the calls that started in [start_ms, end_ms) (not empty) and match
    ``filters``."""

    def __init__(
        self,
        store: AnalyticsReads,
        start_ms: int,
        end_ms: int,
        filters: Filters,
        use_rollups: bool = True,
    ) -> None:
        self.store = store
        self.use_rollups = use_rollups
        self.start_ms, self.end_ms = start_ms, end_ms
        self.filters = filters
        self._filter = call_filter(filters)

    def _raw(self) -> list[Segment]:
        return [Segment(RAW, self.start_ms, self.end_ms)]

    @functools.cached_property
    def _compacted_until(self) -> int:
        return self.store.rollups_compacted_until()

    def _segments(self, finest_bucket_ms: int | None = None) -> list[Segment]:
        if self.filters.caller is not None or not self.use_rollups:  # rollups know no callers
            return self._raw()
        return plan(self.start_ms, self.end_ms, finest_bucket_ms, self._compacted_until)

    def _hist_segments(self) -> list[Segment]:
        # rollup histograms know no region (and no caller)
        return self._raw() if self.filters.region is not None else self._segments()

    def totals(self) -> Counters:
        return self.store.counters(self._segments(), self._filter)

    def grouped(self, key: str) -> dict[str, Counters]:
        """Counters per ``to_number`` or ``region``."""
        return self.store.counters_by(self._segments(), self._filter, key)

    def series(self, bucket_ms: int) -> dict[int, Counters]:
        """Counters per bucket of ``bucket_ms`` (buckets aligned to the epoch, i.e. UTC)."""
        return self.store.counters_per_bucket(self._segments(bucket_ms), self._filter, bucket_ms)

    def busiest_hour(self) -> tuple[int, Counters] | None:
        hours = self.store.counters_per_bucket(
            self._segments(HOUR_MS), self._filter, HOUR_MS, busiest=True
        )
        return next(iter(hours.items()), None)

    def histograms(self) -> Histograms:
        return self.store.histograms(self._hist_segments(), self._filter)

    def poor_per_number(self, limit_bin: float, numbers: Sequence[str]) -> dict[str, int]:
        """Per called number of ``numbers``: its rated completed calls with a MOS bin below
        ``limit_bin``."""
        return self.store.poor_per_number(self._hist_segments(), self._filter, limit_bin, numbers)
