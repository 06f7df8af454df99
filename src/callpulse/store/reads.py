"""The typed questions analytics asks, answered in SQL: counters and histograms over planned
rollup segments (per group or bucket), call pages with their positions, one call.

Every rollup source yields rows of the same shape (a time, the group keys, the metrics), so each
question is one UNION ALL of segments under one outer aggregate: one statement, one round trip.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

from callpulse.callback import Problem
from callpulse.store.dialect import Dialect, from_epoch_ms
from callpulse.store.problems import problems_from_json
from callpulse.store.rollups import (
    COMPACTED_UNTIL,
    DURATION_KIND,
    METRICS,
    MOS_KIND,
    hist_sources,
    metric_exprs,
)

RAW = "raw"


@dataclass(frozen=True, slots=True)
class Segment:
    source: str  # a rollup level, or RAW
    start_ms: int
    end_ms: int  # exclusive


@dataclass(frozen=True, slots=True)
class CallFilter:
    """Exact matches on calls; None means any. Rollups know no caller."""

    account_sid: str | None = None
    to: str | None = None
    region: str | None = None
    caller: str | None = None


def equal_conditions(
    dialect: Dialect, pairs: Sequence[tuple[str, Any]], prefix: str = ""
) -> tuple[list[str], list[Any]]:
    """``column = ?`` for each (column, value) whose value is given: the one filter-to-WHERE."""
    conditions, params = [], []
    for column, value in pairs:
        if value is not None:
            conditions.append(f"{prefix}{column} = {dialect.param}")
            params.append(value)
    return conditions, params


def _filter_pairs(f: CallFilter, raw: bool) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = [
        ("account_sid", f.account_sid), ("to_number", f.to), ("region", f.region)
    ]  # fmt: skip
    return [*pairs, ("from_number", f.caller)] if raw else pairs


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


@dataclass(frozen=True, slots=True)
class ListedCall:
    """A call as a page lists it; ``position`` (start ms, row id) orders calls, for cursors."""

    account_sid: str
    call_sid: str
    from_number: str
    to_number: str
    region: str
    started_at: datetime
    status: str
    duration_s: int | None
    mos: float | None
    received_at: datetime
    source: str
    version: int
    problems: tuple[Problem, ...]
    position: tuple[int, int]


_SUMS = ", ".join(f"sum({name})" for name in METRICS)
# Every account with calls: the weeks compacted so far (a row per account), and the minutes
# after them.
_ACCOUNTS = (
    "SELECT account_sid FROM rollup_week_total UNION SELECT account_sid FROM rollup_minute_total "
    f"WHERE bucket >= {COMPACTED_UNTIL}"
)


class RollupReads(abc.ABC):
    """The questions, over the backend's ``_rows`` and ``dialect``."""

    dialect: Dialect

    @abc.abstractmethod
    def _rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query written for ``dialect``."""

    @abc.abstractmethod
    def _locate_call(self, account_sid: str, call_sid: str) -> tuple[str, list[Any]]:
        """``FROM calls c ... WHERE ...`` finding one call by its key, and its parameters."""

    def rollups_compacted_until(self) -> int:
        """Epoch ms from which on only the minute rollups hold the calls (``plan.py``)."""
        return int(self._rows(f"SELECT {COMPACTED_UNTIL}")[0][0])

    # -- sources ------------------------------------------------------------------------------

    def _source(
        self, segment: Segment, f: CallFilter, columns: str, raw_columns: str, suffix: str = ""
    ) -> tuple[str, list[Any]]:
        d = self.dialect
        raw = segment.source == RAW
        conditions, params = equal_conditions(d, _filter_pairs(f, raw))
        if raw:
            table = "calls c"
            conditions.insert(0, f"c.started_at >= {d.ms_param} AND c.started_at < {d.ms_param}")
        else:
            table = f"rollup_{segment.source}{suffix}"
            conditions.insert(0, f"bucket >= {d.param} AND bucket < {d.param}")
        return (
            f"SELECT {raw_columns if raw else columns} FROM {table} "
            f"WHERE {' AND '.join(conditions)}",
            [segment.start_ms, segment.end_ms, *params],
        )

    def _metric_rows(
        self, segments: Sequence[Segment], f: CallFilter, by: str | None
    ) -> tuple[str, list[Any]]:
        """A subquery of (t, to_number, region, metrics...) rows; to_number and region may be
        blank where neither the filter nor the grouping ``by`` needs them."""
        started = self.dialect.ms("c.started_at")
        raw_metrics = ", ".join(f"{expr} AS {name}" for name, expr in metric_exprs("c").items())
        total = f.to is None and f.region is None and by is None  # a few rows per bucket
        # a row per number and bucket: what a To filter or a grouping by number reads
        number = f.region is None and by != "region" and (f.to is not None or by == "to_number")
        keys = "'' AS to_number, '' AS region" if total else "to_number, region"
        keys = "to_number, '' AS region" if number else keys
        columns = f"bucket AS t, {keys}, {', '.join(METRICS)}"
        parts, params = [], []
        for segment in segments:
            sql, values = self._source(
                segment, f, columns, f"{started} AS t, c.to_number, c.region, {raw_metrics}",
                "_total" if total else "_number" if number else "",
            )  # fmt: skip
            parts.append(sql)
            params += values
        return " UNION ALL ".join(parts), params

    def _hist_rows(self, segments: Sequence[Segment], f: CallFilter) -> tuple[str, list[Any]]:
        """A subquery of (to_number, kind, bin, n) rows (to_number blank without a filter)."""
        total = f.to is None and f.region is None
        columns = ("'' AS to_number" if total else "to_number") + ", kind, bin, n"
        # Per-number histograms are keyed number, kind, bucket: naming the kinds makes one
        # number's range a seek per kind.
        kinds = f" AND kind IN ({MOS_KIND}, {DURATION_KIND})"
        parts, params = [], []
        for segment in segments:
            if segment.source != RAW:
                sql, values = self._source(
                    segment, f, columns, "", "_total_hist" if total else "_hist"
                )
                parts.append(sql + kinds)
                params += values
                continue
            for kind, bin_expr, condition in hist_sources("c", self.dialect):
                sql, values = self._source(
                    segment, f, "", f"c.to_number, {kind} AS kind, {bin_expr} AS bin, 1 AS n"
                )
                parts.append(f"{sql} AND {condition}")
                params += values
        return " UNION ALL ".join(parts), params

    # -- questions ----------------------------------------------------------------------------

    def counters(self, segments: Sequence[Segment], f: CallFilter) -> Counters:
        rows, params = self._metric_rows(segments, f, by=None)
        (row,) = self._rows(f"SELECT {_SUMS} FROM ({rows}) r", params)
        return Counters.from_row(row)

    def counters_by(
        self, segments: Sequence[Segment], f: CallFilter, key: str
    ) -> dict[str, Counters]:
        """Counters per ``to_number`` or ``region``."""
        if key not in ("to_number", "region"):
            raise ValueError(f"cannot group by {key!r}")
        rows, params = self._metric_rows(segments, f, by=key)
        result = self._rows(f"SELECT {key}, {_SUMS} FROM ({rows}) r GROUP BY {key}", params)
        return {str(row[0]): Counters.from_row(row[1:]) for row in result}

    def counters_per_bucket(
        self, segments: Sequence[Segment], f: CallFilter, bucket_ms: int, *, busiest: bool = False
    ) -> dict[int, Counters]:
        """Counters per bucket of ``bucket_ms`` (aligned to the epoch, i.e. UTC), ascending;
        with ``busiest`` only the bucket with the most calls (the earliest of equals)."""
        rows, params = self._metric_rows(segments, f, by=None)
        order = "ORDER BY sum(calls) DESC, b LIMIT 1" if busiest else "ORDER BY b"
        result = self._rows(
            f"SELECT t - t {self.dialect.mod} {int(bucket_ms)} AS b, {_SUMS} "
            f"FROM ({rows}) r GROUP BY b {order}",
            params,
        )
        return {int(row[0]): Counters.from_row(row[1:]) for row in result}

    def histograms(self, segments: Sequence[Segment], f: CallFilter) -> Histograms:
        rows, params = self._hist_rows(segments, f)
        result = self._rows(f"SELECT kind, bin, sum(n) FROM ({rows}) h GROUP BY kind, bin", params)
        by_kind: dict[int, dict[int, int]] = {MOS_KIND: {}, DURATION_KIND: {}}
        for kind, bin_, n in result:
            if n:
                by_kind[int(kind)][int(bin_)] = int(n)
        return Histograms(mos=by_kind[MOS_KIND], duration=by_kind[DURATION_KIND])

    def poor_per_number(
        self, segments: Sequence[Segment], f: CallFilter, limit_bin: float, numbers: Sequence[str]
    ) -> dict[str, int]:
        """Per called number of ``numbers`` (those with calls in the segments, as the counters
        found them): its rated completed calls with a MOS bin below ``limit_bin``."""
        if not numbers:
            return {}
        d = self.dialect
        # The numbers once, for every rollup segment: no scan of a segment to find them again.
        listed = " UNION ALL ".join([f"SELECT {d.param}"] * len(numbers))
        mos_bin, rated = next((b, c) for k, b, c in hist_sources("c", d) if k == MOS_KIND)
        account, account_params = equal_conditions(d, [("account_sid", f.account_sid)], "h.")
        parts, params = [], []
        for segment in segments:
            if segment.source == RAW:
                sql, values = self._source(segment, f, "", f"c.to_number, {mos_bin} AS bin")
                parts.append(
                    f"SELECT to_number, sum(CASE WHEN bin < {d.param} THEN 1 ELSE 0 END) AS n "
                    f"FROM ({sql} AND {rated}) h GROUP BY to_number"
                )
                params += [limit_bin, *values]
                continue
            # A sum per number, each a seek into the number-first histograms (as a join,
            # PostgreSQL would rather scan them whole).
            below = (
                f"SELECT sum(h.n) FROM rollup_{segment.source}_hist h "
                f"WHERE h.to_number = g.to_number AND h.kind = {MOS_KIND} "
                f"AND h.bucket >= {d.param} AND h.bucket < {d.param} AND h.bin < {d.param}"
            )
            parts.append(f"SELECT g.to_number, ({' AND '.join([below, *account])}) AS n "
                         f"FROM g")  # fmt: skip
            params += [segment.start_ms, segment.end_ms, limit_bin, *account_params]
        result = self._rows(
            f"WITH g (to_number) AS ({listed}) "
            f"SELECT to_number, sum(n) FROM ({' UNION ALL '.join(parts)}) s GROUP BY to_number",
            [*numbers, *params],
        )
        return {str(number): int(n or 0) for number, n in result}

    # -- calls --------------------------------------------------------------------------------

    def _listed_columns(self) -> str:
        d = self.dialect
        return (
            f"c.account_sid, c.call_sid, c.from_number, c.to_number, c.region, "
            f"{d.ms('c.started_at')}, c.status, c.duration_s, c.mos, {d.ms('c.received_at')}, "
            f"c.source, c.version, c.problems, c.{d.row_id}"
        )

    def call_page(
        self,
        start_ms: int,
        end_ms: int,
        f: CallFilter,
        *,
        status: str | None,
        with_problems: bool,
        before: tuple[int, int] | None,
        limit: int,
    ) -> list[ListedCall]:
        """Up to ``limit`` calls that started in [start_ms, end_ms), newest first, all after
        ``before`` (a position) in that order."""
        d = self.dialect
        conditions, params = equal_conditions(d, [*_filter_pairs(f, raw=True), ("status", status)])
        conditions[:0] = [f"started_at >= {d.ms_param}", f"started_at < {d.ms_param}"]
        params[:0] = [start_ms, end_ms]
        if with_problems:
            conditions.append("problems <> '[]'")
        if before is not None:
            conditions.append(
                f"(started_at < {d.ms_param} OR "
                f"(started_at = {d.ms_param} AND {d.row_id} < {d.param}))"
            )
            params += [before[0], before[0], before[1]]
        rows = self._rows(
            f"SELECT {self._listed_columns()} FROM calls c WHERE {' AND '.join(conditions)} "
            f"ORDER BY started_at DESC, {d.row_id} DESC LIMIT {d.param}",
            [*params, limit],
        )
        return [_listed(row) for row in rows]

    def find_call(self, call_sid: str, account_sid: str | None = None) -> ListedCall | None:
        """One call by CallSid; without an account, every account with rollups is tried (few),
        so the lookup still goes through the (account, call) key index."""
        accounts = (
            [account_sid] if account_sid is not None else [a for (a,) in self._rows(_ACCOUNTS)]
        )
        for account in accounts:
            lookup, params = self._locate_call(account, call_sid)
            rows = self._rows(f"SELECT {self._listed_columns()} {lookup}", params)
            if rows:
                return _listed(rows[0])
        return None


def _listed(row: Sequence[Any]) -> ListedCall:
    (account_sid, call_sid, from_number, to_number, region, started_ms, status, duration_s, mos,
     received_ms, source, version, problems, row_id) = row  # fmt: skip
    return ListedCall(
        account_sid, call_sid, from_number, to_number, region, from_epoch_ms(int(started_ms)),
        status, duration_s, mos, from_epoch_ms(int(received_ms)), source, version,
        problems_from_json(problems), (int(started_ms), int(row_id)),
    )  # fmt: skip
