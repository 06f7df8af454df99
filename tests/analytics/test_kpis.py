"""Analytics against ground truth computed from the calls themselves (tests/analytics/truth.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter

from callpulse.analytics import Analytics, BadCursor, Filters, QueryError
from callpulse.analytics.models import Totals
from callpulse.callback import WITHHELD, CallRecord
from callpulse.config import Settings
from callpulse.store import Store
from callpulse.store.dialect import to_epoch_ms
from callpulse.store.rollups import duration_bin_width
from tests.analytics import truth
from tests.analytics.dataset import ACCOUNTS, CALLED, START, generate
from tests.support import compacted_from

# Ragged edges (seconds) so every level and the raw calls at both ends take part.
SINCE = START + timedelta(days=1, hours=5, minutes=17, seconds=23)
UNTIL = SINCE + timedelta(days=1, hours=20, minutes=3, seconds=11)


@pytest.fixture
def loaded(store: Store) -> tuple[Store, list[CallRecord]]:
    batches, finals = generate()
    for batch in batches:
        store.write_batch(batch)
    return store, finals


def assert_totals(got: Totals, want: dict[str, Any]) -> None:
    approx = pytest.approx
    assert (got.calls, got.completed, got.failed) == (
        want["calls"],
        want["completed"],
        want["failed"],
    )
    assert got.success_rate == approx(want["success_rate"])
    assert (got.problems, got.mos.scored, got.duration.timed) == (
        want["problems"],
        want["mos_scored"],
        want["duration_timed"],
    )
    assert got.mos.mean == approx(want["mos_mean"])
    assert (got.mos.p05, got.mos.p50, got.mos.p95) == approx(
        (want["mos_p05"], want["mos_p50"], want["mos_p95"])
    )
    assert got.mos.poor_rate == approx(want["poor_rate"])
    assert [band.calls for band in got.mos.bands] == want["band_calls"]
    assert got.duration.total_s == want["total_s"]
    assert got.duration.acd_s == approx(want["acd_s"])
    for value, exact in ((got.duration.p50_s, want["duration_p50"]),
                         (got.duration.p90_s, want["duration_p90"])):  # fmt: skip
        assert value is not None and exact is not None
        assert abs(value - exact) <= duration_bin_width(int(exact))  # coarse bins past 60 s
    assert got.short_call_rate == approx(want["short_call_rate"])
    assert got.repeat_callers == want["repeat_callers"]
    assert got.busiest_hour is not None
    assert got.busiest_hour.start == want["busiest_hour"]
    assert got.busiest_hour.calls == want["busiest_calls"]
    assert got.busiest_hour.erlangs == approx(want["busiest_erlangs"])


def some_caller(finals: list[CallRecord]) -> str:
    counts: dict[str, int] = {}
    for call in finals:
        if call.from_number != WITHHELD:
            counts[call.from_number] = counts.get(call.from_number, 0) + 1
    return max(counts, key=lambda n: counts[n])


def filter_cases(finals: list[CallRecord]) -> list[tuple[Filters, Any]]:
    caller = some_caller(finals)
    return [
        (Filters(), lambda c: True),
        (Filters(account_sid=ACCOUNTS[1]), lambda c: c.account_sid == ACCOUNTS[1]),
        (Filters(to=CALLED[0]), lambda c: c.to_number == CALLED[0]),
        (Filters(region="GB"), lambda c: truth.region(c.from_number) == "GB"),
        (Filters(caller=caller), lambda c: c.from_number == caller),
        (
            Filters(account_sid=ACCOUNTS[0], to=CALLED[2], region="US"),
            lambda c: (
                (c.account_sid, c.to_number, truth.region(c.from_number))
                == (ACCOUNTS[0], CALLED[2], "US")
            ),
        ),
    ]


def test_summary_matches_ground_truth_for_every_filter(
    loaded: tuple[Store, list[CallRecord]],
) -> None:
    store, finals = loaded
    analytics = Analytics(store, Settings())
    for filters, keep in filter_cases(finals):
        summary = analytics.summary(SINCE, UNTIL, filters)
        assert_totals(summary, truth.totals(finals, SINCE, UNTIL, keep))
        assert_totals(summary.previous, truth.totals(finals, SINCE - (UNTIL - SINCE), SINCE, keep))


def test_thresholds_come_from_settings(loaded: tuple[Store, list[CallRecord]]) -> None:
    store, finals = loaded
    summary = Analytics(store, Settings(poor_mos=3.6, short_call_s=30)).summary(
        SINCE, UNTIL, Filters()
    )
    want = truth.totals(finals, SINCE, UNTIL, poor_mos=3.6, short_s=30)
    assert summary.mos.poor_rate == pytest.approx(want["poor_rate"])
    assert summary.short_call_rate == pytest.approx(want["short_call_rate"])
    assert (summary.mos.poor_threshold, summary.short_call_threshold_s) == (3.6, 30)


def test_timeseries_numbers_and_regions(loaded: tuple[Store, list[CallRecord]]) -> None:
    store, finals = loaded
    analytics = Analytics(store, Settings())
    for bucket, size in (("hour", timedelta(hours=1)), ("day", timedelta(days=1))):
        points = analytics.timeseries(SINCE, UNTIL, Filters(), bucket)
        for point in points:
            lo = max(point.bucket_start, SINCE)
            want = truth.totals(finals, lo, min(point.bucket_start + size, UNTIL))
            assert (point.calls, point.completed, point.failed) == (
                want["calls"], want["completed"], want["failed"])  # fmt: skip
            assert point.mos_mean == pytest.approx(want["mos_mean"])
        assert sum(p.calls for p in points) == truth.totals(finals, SINCE, UNTIL)["calls"]
    for row in analytics.numbers(SINCE, UNTIL, Filters()):
        want = truth.totals(finals, SINCE, UNTIL, lambda c, n=row.to: c.to_number == n)
        assert (row.calls, row.completed, row.failed) == (
            want["calls"],
            want["completed"],
            want["failed"],
        )
        assert row.poor_rate == pytest.approx(want["poor_rate"])
        assert row.acd_s == pytest.approx(want["acd_s"])
        assert row.problems == want["problems"]
    regions = analytics.regions(SINCE, UNTIL, Filters())
    assert {r.region for r in regions} >= {"US", "GB", "DE", "unknown", "sip", "client"}
    for row in regions:
        want = truth.totals(
            finals, SINCE, UNTIL, lambda c, r=row.region: truth.region(c.from_number) == r
        )
        assert (row.calls, row.success_rate) == (want["calls"], pytest.approx(want["success_rate"]))


def test_calls_pages_visit_every_call_once_newest_first(
    loaded: tuple[Store, list[CallRecord]],
) -> None:
    store, finals = loaded
    analytics = Analytics(store, Settings())
    seen, cursor = [], None
    while True:
        page = analytics.calls(SINCE, UNTIL, Filters(to=CALLED[1]), status="completed",
                               cursor=cursor, limit=17)  # fmt: skip
        seen += page.calls
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    want = {c.call_sid for c in finals if SINCE <= c.started_at < UNTIL
            and c.to_number == CALLED[1] and c.status == "completed"}  # fmt: skip
    assert [c.call_sid for c in seen if c.call_sid in want] == [c.call_sid for c in seen]
    assert len(seen) == len(want) == len({c.call_sid for c in seen})
    starts = [c.started_at for c in seen]
    assert starts == sorted(starts, reverse=True)
    one = analytics.call(seen[0].call_sid)
    assert one is not None and one.model_dump() == seen[0].model_dump()
    assert analytics.call("no-such-call") is None


def test_bad_questions_name_the_parameter(loaded: tuple[Store, list[CallRecord]]) -> None:
    store, _ = loaded
    analytics = Analytics(store, Settings())
    with pytest.raises(QueryError) as error:
        analytics.summary(UNTIL, SINCE, Filters())
    assert error.value.parameter == "until"
    with pytest.raises(QueryError) as error:
        analytics.timeseries(START, START + timedelta(days=30), Filters(), "minute")
    assert error.value.parameter == "bucket"
    with pytest.raises(QueryError) as error:
        analytics.summary(datetime(1, 1, 2, tzinfo=UTC), UNTIL, Filters())
    assert error.value.parameter == "since"
    with pytest.raises(BadCursor):
        analytics.calls(SINCE, UNTIL, Filters(), cursor="bm90LWEtY3Vyc29y")


def test_rollups_and_raw_calls_give_the_same_answers(
    loaded: tuple[Store, list[CallRecord]],
) -> None:
    store, finals = loaded
    fast, raw = Analytics(store, Settings()), Analytics(store, Settings(), use_rollups=False)
    questions = (("summary", ()), ("timeseries", ("hour",)), ("numbers", ()), ("regions", ()))
    for filters, _ in filter_cases(finals):
        for name, extra in questions:
            answers = [getattr(a, name)(SINCE, UNTIL, filters, *extra) for a in (fast, raw)]
            assert as_json(answers[0]) == tolerant(as_json(answers[1])), (name, filters)


@pytest.mark.parametrize(
    "created",
    [SINCE + timedelta(hours=7, minutes=13, seconds=30), UNTIL - timedelta(hours=3, minutes=31)],
)
def test_answers_are_the_same_wherever_compaction_stands(store: Store, created: datetime) -> None:
    """A database created at ``created``: the calls after it are in the minutes only, until
    compaction sums them into the coarser levels; the answers never change."""
    compacted_from(store, created)
    batches, finals = generate()
    for batch in batches:
        store.write_batch(batch)
    fast, raw = Analytics(store, Settings()), Analytics(store, Settings(), use_rollups=False)
    questions = (("summary", ()), ("timeseries", ("hour",)), ("numbers", ()), ("regions", ()))

    def answers(analytics: Analytics) -> list[Any]:
        return [
            as_json(getattr(analytics, name)(SINCE, UNTIL, filters, *extra))
            for filters, _ in filter_cases(finals)
            for name, extra in questions
        ]

    exact = answers(raw)
    assert answers(fast) == tolerant(exact)
    for hours in (2, 30, 90):
        store.compact_rollups(to_epoch_ms(created + timedelta(hours=hours)))
        assert answers(fast) == tolerant(exact), hours


def as_json(value: Any) -> Any:
    return json.loads(TypeAdapter(type(value)).dump_json(value))


def tolerant(value: Any) -> Any:
    """JSON of a result whose floats compare within 1e-9 relative: sums in another order may
    differ in the last bit, and no rounding can hide that when it straddles a rounding boundary."""
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-12)
    if isinstance(value, dict):
        return {k: tolerant(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tolerant(v) for v in value]
    return value


@pytest.mark.parametrize(
    "zone_name", ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu"]
)
def test_timeseries_buckets_follow_the_time_zone(
    loaded: tuple[Store, list[CallRecord]], zone_name: str
) -> None:
    store, finals = loaded
    zone = ZoneInfo(zone_name)
    analytics = Analytics(store, Settings())
    for bucket in ("hour", "day"):
        points = analytics.timeseries(SINCE, UNTIL, Filters(), bucket, zone)
        ends = [p.bucket_start for p in points[1:]] + [UNTIL]
        for point, end in zip(points, ends, strict=True):
            local = point.bucket_start.astimezone(zone)
            assert (local.minute, local.second) == (0, 0), (bucket, local)
            if bucket == "day":
                assert local.hour == 0, local
            want = truth.totals(finals, max(point.bucket_start, SINCE), end)
            assert (point.calls, point.completed, point.failed) == (
                want["calls"], want["completed"], want["failed"])  # fmt: skip
            assert point.mos_mean == pytest.approx(want["mos_mean"])
        assert sum(p.calls for p in points) == truth.totals(finals, SINCE, UNTIL)["calls"]
