"""Staffing from stored calls (Analytics.staffing) on both backends, with figures worked out by
hand: calls per clock hour, their mean duration, Erlangs, and Erlang C agents."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callpulse.analytics import Analytics, Filters, QueryError, staffing
from callpulse.analytics.erlang import Target, staff
from callpulse.analytics.models import StaffingPlan
from callpulse.callback import CallRecord
from callpulse.config import Settings
from callpulse.store import Store
from callpulse.store.base import CallWrite

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
LINE, OTHER = "+18005550101", "+18005550102"
# Ragged on purpose: the plan widens the range to whole clock hours, 09:00 to 11:00 a week on.
SINCE = MONDAY + timedelta(hours=9, minutes=17)
UNTIL = MONDAY + timedelta(days=7, hours=10, minutes=40)
_sids = itertools.count()


def _call(start: datetime, status: str, duration: int | None, to: str = LINE) -> CallWrite:
    record = CallRecord(
        account_sid="AC-staff",
        call_sid=f"CA{next(_sids):032d}",
        from_number="+14155550100",
        to_number=to,
        started_at=start,
        status=status,
        duration_s=duration,
        mos=4.2 if status == "completed" else None,
    )
    return CallWrite(record, start)


def _spread(hour: datetime, count: int, duration: int, to: str = LINE) -> list[CallWrite]:
    return [
        _call(hour + timedelta(seconds=17 * i), "completed", duration, to) for i in range(count)
    ]


@pytest.fixture
def analytics(store: Store) -> Analytics:
    week2 = MONDAY + timedelta(days=7)
    writes = [
        # Monday 09:00, two weeks: 200 and 100 calls of 180 s -> 10 and 5 Erlangs.
        *_spread(MONDAY + timedelta(hours=9), 200, 180),
        *_spread(week2 + timedelta(hours=9), 100, 180),
        # Monday 10:00, week 1: 100, 200, 300 s, one failed, one without a duration:
        # 5 calls, AHT 200 s over the 3 timed ones.
        *[_call(MONDAY + timedelta(hours=10, minutes=m), "completed", d)
          for m, d in ((1, 100), (2, 200), (3, 300))],
        _call(MONDAY + timedelta(hours=10, minutes=4), "failed", 0),
        _call(MONDAY + timedelta(hours=10, minutes=5), "completed", None),
        # Monday 11:00, week 1: only failed calls, no duration to average.
        _call(MONDAY + timedelta(hours=11, minutes=1), "failed", None),
        _call(MONDAY + timedelta(hours=11, minutes=2), "failed", 0),
        # Tuesday 14:00: 20 calls of 360 s to the other line -> 2 Erlangs.
        *_spread(MONDAY + timedelta(days=1, hours=14), 20, 360, OTHER),
        # Outside the widened range: before 09:00 and after 11:00 of the second Monday.
        _call(MONDAY + timedelta(hours=8, minutes=59), "completed", 100),
        _call(week2 + timedelta(hours=11), "completed", 100),
    ]  # fmt: skip
    for at in range(0, len(writes), 97):
        store.write_batch(writes[at : at + 97])
    return Analytics(store, Settings())


def _by_start(plan: StaffingPlan) -> dict[datetime, object]:
    return {row.start: row for row in plan.intervals}


def test_one_interval_per_clock_hour_of_the_widened_range(analytics: Analytics) -> None:
    plan = analytics.staffing(SINCE, UNTIL, Filters())
    assert (plan.since, plan.until) == (MONDAY + timedelta(hours=9), UNTIL.replace(minute=0)
                                         + timedelta(hours=1))  # fmt: skip
    starts = [row.start for row in plan.intervals]
    assert len(starts) == 7 * 24 + 2
    assert starts == [plan.since + timedelta(hours=h) for h in range(len(starts))]
    assert sum(row.calls for row in plan.intervals) == 200 + 100 + 5 + 2 + 20


def test_each_hour_from_its_calls_and_their_mean_duration(analytics: Analytics) -> None:
    rows = {row.start: row for row in analytics.staffing(SINCE, UNTIL, Filters()).intervals}
    busy = rows[MONDAY + timedelta(hours=9)]
    assert (busy.calls, busy.aht_s, busy.erlangs) == (200, 180.0, pytest.approx(10.0))
    # The published example: 10 Erlangs, 80 % in 20 s -> 14 agents, SL 0.888, occupancy 0.714.
    assert (busy.agents, busy.scheduled) == (14, 14)
    assert busy.service_level == pytest.approx(0.888, abs=5e-4)
    assert busy.occupancy == pytest.approx(0.714, abs=5e-4)
    assert busy.p_wait == pytest.approx(0.174, abs=5e-4)
    mixed = rows[MONDAY + timedelta(hours=10)]
    assert (mixed.calls, mixed.aht_s) == (5, 200.0)  # (100 + 200 + 300) / 3 timed calls
    assert mixed.erlangs == pytest.approx(5 * 200 / 3600)
    # One agent: P(wait) = A = 0.278 and SL = 1 - 0.278 e^(-0.722 * 20 / 200) = 0.741, short.
    assert (mixed.agents, mixed.service_level) == (2, pytest.approx(0.9715, abs=1e-4))
    failed_only = rows[MONDAY + timedelta(hours=11)]
    assert failed_only.calls == 2
    assert (failed_only.aht_s, failed_only.erlangs, failed_only.agents) == (None, None, None)
    quiet = rows[MONDAY + timedelta(hours=12)]
    assert (quiet.calls, quiet.aht_s, quiet.erlangs, quiet.agents, quiet.scheduled) == (
        0, None, 0.0, 0, 0)  # fmt: skip
    assert (quiet.p_wait, quiet.asa_s, quiet.service_level) == (0.0, 0.0, 1.0)
    other = rows[MONDAY + timedelta(days=1, hours=14)]
    assert (other.calls, other.aht_s, other.erlangs) == (20, 360.0, pytest.approx(2.0))
    assert other.agents == staff(2.0, 360.0).agents


def test_the_profile_averages_each_hour_of_the_week(analytics: Analytics) -> None:
    profile = analytics.staffing(SINCE, UNTIL, Filters()).profile
    assert len(profile) == 7 * 24  # the range holds every hour of the week
    assert [(p.weekday, p.hour) for p in profile] == [(d, h) for d in range(7) for h in range(24)]
    slots = {(p.weekday, p.hour): p for p in profile}
    nine = slots[(0, 9)]
    assert (nine.weeks, nine.calls, nine.aht_s) == (2, 150.0, 180.0)
    assert nine.erlangs == pytest.approx(7.5)
    assert nine.agents == staff(7.5, 180.0).agents
    ten = slots[(0, 10)]  # week 1: 5 calls averaging 200 s; week 2: none
    assert (ten.weeks, ten.calls, ten.aht_s) == (2, 2.5, 200.0)
    assert ten.erlangs == pytest.approx(2.5 * 200 / 3600)
    assert (slots[(0, 11)].weeks, slots[(0, 11)].agents) == (1, None)
    assert (slots[(1, 14)].weeks, slots[(1, 14)].calls) == (1, 20.0)
    assert slots[(3, 3)].agents == 0


def test_the_target_changes_the_agents(analytics: Analytics) -> None:
    hour = MONDAY + timedelta(hours=9)
    strict = analytics.staffing(
        SINCE, UNTIL, Filters(), max_occupancy=0.70, shrinkage=0.30, answer_within_s=20
    )
    busy = next(row for row in strict.intervals if row.start == hour)
    assert (busy.agents, busy.scheduled) == (15, 22)  # the published example's figures
    assert strict.target.max_occupancy == 0.70
    looser = analytics.staffing(SINCE, UNTIL, Filters(), service_level=0.5, answer_within_s=60)
    assert (
        next(r for r in looser.intervals if r.start == hour).agents
        == staff(10.0, 180.0, Target(service_level=0.5, answer_within_s=60)).agents
    )


def test_filters_apply_and_raw_calls_agree_with_rollups(analytics: Analytics, store: Store) -> None:
    other = analytics.staffing(SINCE, UNTIL, Filters(to=OTHER))
    assert {row.start: row.calls for row in other.intervals if row.calls} == {
        MONDAY + timedelta(days=1, hours=14): 20
    }
    assert (
        sum(row.calls for row in analytics.staffing(SINCE, UNTIL, Filters(region="GB")).intervals)
        == 0
    )
    raw = Analytics(store, Settings(), use_rollups=False).staffing(SINCE, UNTIL, Filters())
    assert raw == analytics.staffing(SINCE, UNTIL, Filters())


def test_hours_and_the_week_follow_a_time_zone(analytics: Analytics) -> None:
    # Kolkata is UTC+05:30: its hours start at half past in UTC; SINCE (09:17 UTC) is 14:47.
    plan = analytics.staffing(SINCE, UNTIL, Filters(), zone=ZoneInfo("Asia/Kolkata"))
    half_past_eight = MONDAY + timedelta(hours=8, minutes=30)
    assert plan.since == half_past_eight
    assert plan.until == MONDAY + timedelta(days=7, hours=11, minutes=30)
    rows = {row.start: row for row in plan.intervals}
    # Of the 200 calls 17 s apart from 09:00 UTC, 106 start before 09:30; and the 08:59 call.
    assert rows[half_past_eight].calls == 106 + 1
    assert rows[half_past_eight + timedelta(hours=1)].calls == 94 + 5
    assert sum(row.calls for row in plan.intervals) == 327 + 2  # both calls outside UTC's hours
    slots = {(p.weekday, p.hour): p for p in plan.profile}
    assert (slots[(0, 14)].weeks, slots[(0, 14)].calls) == (2, (107 + 100) / 2)
    assert (slots[(0, 15)].weeks, slots[(0, 15)].calls) == (2, (99 + 0) / 2)
    assert (slots[(0, 16)].weeks, slots[(0, 16)].calls) == (2, (2 + 1) / 2)
    assert (slots[(1, 19)].calls, slots[(1, 19)].aht_s) == (20, 360.0)  # Tuesday 14:00 UTC


@pytest.mark.parametrize(
    ("target", "parameter"),
    [
        ({"service_level": 1.0}, "service_level"),
        ({"answer_within_s": -5.0}, "answer_within_s"),
        ({"max_occupancy": 0.0}, "max_occupancy"),
        ({"shrinkage": 1.0}, "shrinkage"),
    ],
)
def test_a_target_out_of_range_names_the_parameter(
    analytics: Analytics, target: dict[str, float], parameter: str
) -> None:
    with pytest.raises(QueryError) as caught:
        analytics.staffing(SINCE, UNTIL, Filters(), **target)
    assert caught.value.parameter == parameter
    assert "expected" in str(caught.value)


def test_a_range_too_long_for_hours_is_refused(analytics: Analytics) -> None:
    with pytest.raises(QueryError) as caught:
        analytics.staffing(MONDAY - timedelta(days=500), MONDAY, Filters())
    assert caught.value.parameter == "since"


def test_traffic_beyond_the_bound_is_an_error_naming_the_hour() -> None:
    # A week-long CallDuration (the most a callback may carry) on 6000 calls: 1.0 million Erlangs.
    with pytest.raises(staffing.TooMuchTraffic, match="the hour from 09:00 carries 1,008,000"):
        staffing.figures(6000, 604_800.0, Target(), "the hour from 09:00")
    assert staffing.figures(5000, 604_800.0, Target(), "the hour")["agents"] > 840_000
