"""SQL over a planned range: one UNION ALL of rollup levels and raw calls per question.

Every source yields rows of the same shape (a time, the group keys, the metrics), so each
question (totals, a time series, per number, per region, histograms) is one outer aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

from callpulse.analytics.models import Filters
from callpulse.analytics.plan import RAW, Segment, plan
from callpulse.store import Store
from callpulse.store.rollups import (
    DURATION_KIND,
    LEVELS,
    METRICS,
    MOS_KIND,
    Dialect,
    hist_sources,
    metric_exprs,
)

HOUR_MS = LEVELS["hour"]


@dataclass(frozen=True, slots=True)
class Counters:
    calls: int = 0
    completed: int = 0
    failed: int = 0
    duration_s: int = 0
    mos_sum: float = 0.0
    mos_n: int = 0
    repeats: int = 0
    duration_n: int = 0  # completed calls with a duration: what talk-time averages cover
    problems: int = 0  # calls with at least one data problem

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Counters:
        (calls, completed, failed, duration_s, mos_sum, mos_n, repeats, duration_n,
         problems) = (v or 0 for v in row)  # fmt: skip
        return cls(
            int(calls), int(completed), int(failed), int(duration_s), float(mos_sum),
            int(mos_n), int(repeats), int(duration_n), int(problems),
        )  # fmt: skip

    def __add__(self, other: Counters) -> Counters:
        return Counters(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


@dataclass(frozen=True, slots=True)
class Histograms:
    mos: dict[int, int]
    duration: dict[int, int]


class RangeQuery:
    """Questions about the calls that started in [start_ms, end_ms) (not empty) and match
    ``filters``."""

    def __init__(
        self, store: Store, start_ms: int, end_ms: int, filters: Filters, use_rollups: bool = True
    ) -> None:
        self.store = store
        self.use_rollups = use_rollups
        self.dialect: Dialect = store.dialect
        self.start_ms, self.end_ms = start_ms, end_ms
        self.filters = filters

    # -- sources ------------------------------------------------------------------------------

    def _segments(self, finest_bucket_ms: int | None = None) -> list[Segment]:
        if self.filters.caller is not None or not self.use_rollups:  # rollups know no callers
            return [Segment(RAW, self.start_ms, self.end_ms)]
        return plan(self.start_ms, self.end_ms, finest_bucket_ms)

    def _conditions(self, raw: bool) -> tuple[list[str], list[Any]]:
        p = self.dialect.param
        conditions, params = [], []
        for column, value in (
            ("account_sid", self.filters.account_sid),
            ("to_number", self.filters.to),
            ("region", self.filters.region),
            ("from_number", self.filters.caller),
        ):
            if value is not None and (raw or column != "from_number"):
                conditions.append(f"{column} = {p}")
                params.append(value)
        return conditions, params

    def _source(
        self, segment: Segment, columns: str, raw_columns: str, table_suffix: str = ""
    ) -> tuple[str, list[Any]]:
        p = self.dialect.param
        raw = segment.source == RAW
        conditions, params = self._conditions(raw)
        if raw:
            table = "calls c"
            started = f"c.started_at >= {self.dialect.ms_param} AND c.started_at < "
            conditions.insert(0, started + self.dialect.ms_param)
        else:
            table = f"rollup_{segment.source}{table_suffix}"
            conditions.insert(0, f"bucket >= {p} AND bucket < {p}")
        where = " AND ".join(conditions)
        return (
            f"SELECT {raw_columns if raw else columns} FROM {table} WHERE {where}",
            [segment.start_ms, segment.end_ms, *params],
        )

    def _whole_account(self) -> bool:
        """Whether the per-account rollups (a few rows per bucket) can answer."""
        return self.filters.to is None and self.filters.region is None

    def _metric_rows(
        self, finest_bucket_ms: int | None = None, grouped: bool = False
    ) -> tuple[str, list[Any]]:
        """A subquery of (t, to_number, region, metrics...) rows over the range; without
        ``grouped``, to_number and region may be blank."""
        started = self.dialect.ms("c.started_at")
        raw_metrics = ", ".join(f"{expr} AS {name}" for name, expr in metric_exprs("c").items())
        total = self._whole_account() and not grouped
        columns = (
            f"bucket AS t, '' AS to_number, '' AS region, {', '.join(METRICS)}"
            if total
            else f"bucket AS t, to_number, region, {', '.join(METRICS)}"
        )
        parts, params = [], []
        for segment in self._segments(finest_bucket_ms):
            sql, values = self._source(
                segment,
                columns,
                f"{started} AS t, c.to_number, c.region, {raw_metrics}",
                "_total" if total else "",
            )
            parts.append(sql)
            params += values
        return " UNION ALL ".join(parts), params

    def _hist_rows(self, per_number: bool = False) -> tuple[str, list[Any]]:
        """A subquery of (to_number, kind, bin, n) rows (to_number blank unless
        ``per_number``); rollup histograms know no region."""
        segments = (
            [Segment(RAW, self.start_ms, self.end_ms)]
            if self.filters.region is not None or self.filters.caller is not None
            else self._segments()
        )
        total = self._whole_account() and not per_number
        columns = ("'' AS to_number" if total else "to_number") + ", kind, bin, n"
        parts, params = [], []
        for segment in segments:
            if segment.source != RAW:
                sql, values = self._source(
                    segment, columns, "", "_total_hist" if total else "_hist"
                )
                parts.append(sql)
                params += values
                continue
            for kind, bin_expr, condition in hist_sources("c", self.dialect):
                sql, values = self._source(
                    segment, "", f"c.to_number, {kind} AS kind, {bin_expr} AS bin, 1 AS n"
                )
                parts.append(f"{sql} AND {condition}")
                params += values
        return " UNION ALL ".join(parts), params

    # -- questions ----------------------------------------------------------------------------

    def _sums(self) -> str:
        return ", ".join(f"sum({name})" for name in METRICS)

    def totals(self) -> Counters:
        rows, params = self._metric_rows()
        (row,) = self.store.read(f"SELECT {self._sums()} FROM ({rows}) r", params)
        return Counters.from_row(row)

    def grouped(self, key: str) -> dict[str, Counters]:
        """Counters per ``to_number`` or ``region``."""
        if key not in ("to_number", "region"):
            raise ValueError(f"cannot group by {key!r}")
        rows, params = self._metric_rows(grouped=True)
        result = self.store.read(
            f"SELECT {key}, {self._sums()} FROM ({rows}) r GROUP BY {key}", params
        )
        return {str(row[0]): Counters.from_row(row[1:]) for row in result}

    def series(self, bucket_ms: int) -> dict[int, Counters]:
        """Counters per bucket of ``bucket_ms`` (buckets aligned to the epoch, i.e. UTC)."""
        rows, params = self._metric_rows(bucket_ms)
        result = self.store.read(
            f"SELECT t - t {self.dialect.mod} {int(bucket_ms)} AS b, {self._sums()} "
            f"FROM ({rows}) r GROUP BY b ORDER BY b",
            params,
        )
        return {int(row[0]): Counters.from_row(row[1:]) for row in result}

    def busiest_hour(self) -> tuple[int, Counters] | None:
        rows, params = self._metric_rows(HOUR_MS)
        result = self.store.read(
            f"SELECT t - t {self.dialect.mod} {HOUR_MS} AS b, {self._sums()} FROM ({rows}) r "
            "GROUP BY b ORDER BY sum(calls) DESC, b LIMIT 1",
            params,
        )
        return (int(result[0][0]), Counters.from_row(result[0][1:])) if result else None

    def histograms(self) -> Histograms:
        rows, params = self._hist_rows()
        result = self.store.read(
            f"SELECT kind, bin, sum(n) FROM ({rows}) h GROUP BY kind, bin", params
        )
        by_kind: dict[int, dict[int, int]] = {MOS_KIND: {}, DURATION_KIND: {}}
        for kind, bin_, n in result:
            if n:
                by_kind[int(kind)][int(bin_)] = int(n)
        return Histograms(mos=by_kind[MOS_KIND], duration=by_kind[DURATION_KIND])

    def mos_below_per_number(self, limit_bin: float) -> dict[str, tuple[int, int]]:
        """Per called number: (rated completed calls, those with a MOS bin below ``limit_bin``)."""
        rows, params = self._hist_rows(per_number=True)
        below = f"sum(CASE WHEN bin < {self.dialect.param} THEN n ELSE 0 END)"
        result = self.store.read(
            f"SELECT to_number, sum(n), {below} "
            f"FROM ({rows}) h WHERE kind = {MOS_KIND} GROUP BY to_number",
            [limit_bin, *params],
        )
        return {str(number): (int(rated or 0), int(below or 0)) for number, rated, below in result}
