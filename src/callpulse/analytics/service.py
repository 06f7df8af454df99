"""KPIs of a call center over a time range: what the API, dashboard, report and metrics show."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, tzinfo
from typing import Any, get_args

from callpulse.analytics import erlang, listing, staffing
from callpulse.analytics.buckets import bucket_starts
from callpulse.analytics.errors import QueryError
from callpulse.analytics.models import (
    Bucket,
    BusiestHour,
    CallItem,
    CallPage,
    DurationStats,
    Filters,
    GroupRow,
    MosStats,
    NumberRow,
    QuarantinePage,
    RegionRow,
    StaffingPlan,
    StaffingTarget,
    Summary,
    TimeseriesPoint,
    Totals,
)
from callpulse.analytics.queries import HOUR_MS, Counters, RangeQuery
from callpulse.analytics.stats import MOS_BIN, count_below, mos_bands, percentile, ratio
from callpulse.config import Settings
from callpulse.store import Store
from callpulse.store.dialect import from_epoch_ms, to_epoch_ms
from callpulse.store.rollups import LEVELS, duration_bin_width

EARLIEST_YEAR = 1970  # before that no call was placed; and the previous period stays in range
MAX_POINTS = 5000  # a time series longer than this is a mistake in the bucket, not a chart
MAX_STAFFING_HOURS = 24 * 402  # the API's 400 days, widened to whole hours
SERIES_BUCKETS: tuple[Bucket, ...] = get_args(Bucket)


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise QueryError("since", "times must carry a time zone (UTC is assumed by the API)")
    return to_epoch_ms(moment)


def _mos_mean(c: Counters) -> float | None:
    return ratio(c.mos_sum, c.mos_n)


def _group(c: Counters) -> dict[str, Any]:
    return GroupRow(
        calls=c.calls,
        completed=c.completed,
        failed=c.failed,
        success_rate=ratio(c.completed, c.completed + c.failed),
        mos_mean=_mos_mean(c),
        acd_s=ratio(c.duration_s, c.duration_n),
        problems=c.problems,
    ).model_dump()


class Analytics:
    """Blocking and thread-safe: the web layer calls it from worker threads."""

    def __init__(self, store: Store, settings: Settings, *, use_rollups: bool = True) -> None:
        """``use_rollups=False`` answers everything from raw calls (a baseline for checks)."""
        self.store = store
        self.use_rollups = use_rollups
        self.poor_mos = settings.poor_mos
        self._poor_bin = round(settings.poor_mos * MOS_BIN, 6)  # 3.6 * 100 is 360.00000000000006
        self.short_call_s = settings.short_call_s

    def _query(self, since: datetime, until: datetime, filters: Filters) -> RangeQuery:
        if since.year < EARLIEST_YEAR:
            raise QueryError("since", f"must be in {EARLIEST_YEAR} or later")
        start, end = _ms(since), _ms(until)
        if start >= end:
            raise QueryError("until", "until must be later than since")
        return RangeQuery(self.store, start, end, filters, self.use_rollups)

    def totals(self, since: datetime, until: datetime, filters: Filters) -> Totals:
        query = self._query(since, until, filters)
        counters = query.totals()
        hist = query.histograms()
        busiest = query.busiest_hour()
        rated = sum(hist.mos.values())
        return Totals(
            calls=counters.calls,
            completed=counters.completed,
            failed=counters.failed,
            success_rate=ratio(counters.completed, counters.completed + counters.failed),
            mos=MosStats(
                scored=counters.mos_n,
                coverage=ratio(counters.mos_n, counters.completed),
                mean=_mos_mean(counters),
                p05=_scaled(percentile(hist.mos, 0.05)),
                p50=_scaled(percentile(hist.mos, 0.50)),
                p95=_scaled(percentile(hist.mos, 0.95)),
                poor_rate=ratio(count_below(hist.mos, self._poor_bin), rated),
                poor_threshold=self.poor_mos,
                bands=mos_bands(hist.mos),
            ),
            duration=DurationStats(
                total_s=counters.duration_s,
                timed=counters.duration_n,
                acd_s=ratio(counters.duration_s, counters.duration_n),
                p50_s=percentile(hist.duration, 0.50, duration_bin_width),
                p90_s=percentile(hist.duration, 0.90, duration_bin_width),
            ),
            short_call_rate=ratio(
                count_below(hist.duration, self.short_call_s), sum(hist.duration.values())
            ),
            short_call_threshold_s=self.short_call_s,
            repeat_callers=counters.repeats,
            problems=counters.problems,
            busiest_hour=(
                BusiestHour(
                    start=from_epoch_ms(busiest[0]),
                    calls=busiest[1].calls,
                    erlangs=busiest[1].duration_s / 3600,
                )
                if busiest is not None and busiest[1].calls
                else None
            ),
        )

    def summary(self, since: datetime, until: datetime, filters: Filters) -> Summary:
        current = self.totals(since, until, filters)
        previous = self.totals(since - (until - since), since, filters)
        return Summary(
            **current.model_dump(),
            since=since.astimezone(UTC),
            until=until.astimezone(UTC),
            previous=previous,
        )

    def timeseries(
        self,
        since: datetime,
        until: datetime,
        filters: Filters,
        bucket: Bucket,
        zone: tzinfo = UTC,
    ) -> list[TimeseriesPoint]:
        """Buckets start on whole minutes, hours or days of ``zone``'s wall clock."""
        if bucket not in SERIES_BUCKETS:  # rollup levels; weeks would start on Thursdays
            raise QueryError("bucket", f"bucket must be one of {', '.join(SERIES_BUCKETS)}")
        size = LEVELS[bucket]
        query = self._query(since, until, filters)
        if (query.end_ms - query.start_ms) / size > MAX_POINTS:
            raise QueryError(
                "bucket", f"more than {MAX_POINTS} {bucket}s in the range: use a coarser bucket"
            )
        starts = bucket_starts(query.start_ms, query.end_ms, bucket, zone)
        sums = _per_bucket(query, starts, size)
        empty = Counters()
        # Built unvalidated: every field is computed here with its type, and validating
        # thousands of points would cost more than the query.
        return [
            TimeseriesPoint.model_construct(
                bucket_start=from_epoch_ms(start),
                calls=c.calls,
                completed=c.completed,
                failed=c.failed,
                success_rate=ratio(c.completed, c.completed + c.failed),
                mos_mean=_mos_mean(c),
            )
            for start in starts
            for c in (sums.get(start, empty),)
        ]

    def numbers(self, since: datetime, until: datetime, filters: Filters) -> list[NumberRow]:
        query = self._query(since, until, filters)
        groups = query.grouped("to_number")
        poor = query.poor_per_number(self._poor_bin, sorted(groups))
        rows = []
        for number, c in groups.items():
            # the rated calls are the MOS histogram's: completed calls with a MOS
            poor_rate = ratio(poor.get(number, 0), c.mos_n)
            rows.append(NumberRow(to=number, poor_rate=poor_rate, **_group(c)))
        return sorted(rows, key=lambda row: (-row.calls, row.to))

    def regions(self, since: datetime, until: datetime, filters: Filters) -> list[RegionRow]:
        groups = self._query(since, until, filters).grouped("region")
        rows = [RegionRow(region=region, **_group(c)) for region, c in groups.items()]
        return sorted(rows, key=lambda row: (-row.calls, row.region))

    def staffing(
        self,
        since: datetime,
        until: datetime,
        filters: Filters,
        *,
        service_level: float = 0.8,
        answer_within_s: float = 20.0,
        max_occupancy: float = 0.85,
        shrinkage: float = 0.0,
        zone: tzinfo = UTC,
    ) -> StaffingPlan:
        """Erlang C agents per clock hour of ``zone`` in the range (widened to whole hours) and
        per hour of the week; QueryError names a target parameter out of range."""
        try:
            target = erlang.Target(service_level, answer_within_s, max_occupancy, shrinkage)
        except erlang.ErlangError as exc:
            raise QueryError(exc.parameter, exc.reason) from None
        query = self._query(since, until, filters)
        if (query.end_ms - query.start_ms) // HOUR_MS > MAX_STAFFING_HOURS:
            raise QueryError(
                "since", f"more than {MAX_STAFFING_HOURS} hours in the range: move since or until"
            )
        starts = bucket_starts(query.start_ms, query.end_ms, "hour", zone)
        end = starts[-1] + HOUR_MS  # whole hours: the last one runs to its end
        whole = RangeQuery(self.store, starts[0], end, filters, self.use_rollups)
        hourly = _per_bucket(whole, starts, HOUR_MS)
        try:
            intervals = staffing.intervals(hourly, starts, target)
            profile = staffing.profile(hourly, starts, target, zone)
        except staffing.TooMuchTraffic as exc:
            raise QueryError("erlangs", str(exc)) from None
        return StaffingPlan(
            since=from_epoch_ms(starts[0]),
            until=from_epoch_ms(end),
            target=StaffingTarget(
                service_level=service_level,
                answer_within_s=answer_within_s,
                max_occupancy=max_occupancy,
                shrinkage=shrinkage,
            ),
            intervals=intervals,
            profile=profile,
        )

    def calls(
        self,
        since: datetime,
        until: datetime,
        filters: Filters,
        *,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        with_problems: bool = False,
    ) -> CallPage:
        query = self._query(since, until, filters)
        return listing.list_calls(
            self.store, query.start_ms, query.end_ms, filters,
            status=status, cursor=cursor, limit=limit, with_problems=with_problems,
        )  # fmt: skip

    def call(self, call_sid: str, account_sid: str | None = None) -> CallItem | None:
        return listing.find_call(self.store, call_sid, account_sid)

    def quarantine(self, *, cursor: str | None = None, limit: int = 50) -> QuarantinePage:
        return listing.list_quarantine(self.store, cursor=cursor, limit=limit)


def _per_bucket(query: RangeQuery, starts: list[int], size: int) -> dict[int, Counters]:
    """Counters per bucket of ``starts`` (buckets of about ``size``, ascending)."""
    # The coarsest stored level whose buckets nest in these: in UTC the bucket itself; in
    # a zone half an hour off UTC, hours are made of minutes.
    fine = max(s for s in LEVELS.values() if s <= size and all(b % s == 0 for b in starts))
    sums: dict[int, Counters] = {}
    for start, c in query.series(fine).items():
        first = starts[bisect_right(starts, start) - 1]
        sums[first] = sums[first] + c if first in sums else c
    return sums


def _scaled(bin_value: float | None) -> float | None:
    return None if bin_value is None else bin_value / MOS_BIN
