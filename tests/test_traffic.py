"""The traffic model's distributions: reproducible, and shaped like a real call center's."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest

from callpulse.traffic import WITHHELD_CALLER, SimulatedCall, TrafficModel, intensity

LINES = ["+18002672001", "+18882672002", "+14152672003", "+12122672004", "+13122672005"]
MONDAY = datetime(2026, 11, 2, tzinfo=UTC)


def week_of_calls(seed: int = 7, calls_per_day: float = 1500) -> list[SimulatedCall]:
    model = TrafficModel(random.Random(seed), LINES)
    return [
        model.call(at) for at in model.arrivals(MONDAY, MONDAY + timedelta(days=7), calls_per_day)
    ]


@pytest.fixture(scope="module")
def calls() -> list[SimulatedCall]:
    return week_of_calls()


def test_same_seed_same_calls_other_seed_other_calls() -> None:
    assert week_of_calls(seed=1, calls_per_day=200) == week_of_calls(seed=1, calls_per_day=200)
    assert week_of_calls(seed=1, calls_per_day=200) != week_of_calls(seed=2, calls_per_day=200)


def test_arrivals_are_ordered_whole_seconds_and_average_the_daily_rate(
    calls: list[SimulatedCall],
) -> None:
    times = [call.started_at for call in calls]
    assert times == sorted(times)
    assert all(t.microsecond == 0 and MONDAY <= t < MONDAY + timedelta(days=7) for t in times)
    assert 7 * 1500 * 0.95 < len(times) < 7 * 1500 * 1.05


def test_daily_pattern_quiet_nights_two_peaks_lighter_weekends(calls: list[SimulatedCall]) -> None:
    weekday_hours = Counter(c.started_at.hour for c in calls if c.started_at.weekday() < 5)
    night = sum(weekday_hours[h] for h in range(0, 6))
    morning = sum(weekday_hours[h] for h in (9, 10, 11))
    lunch = sum(weekday_hours[h] for h in (12, 13))
    afternoon = sum(weekday_hours[h] for h in (14, 15, 16))
    assert morning > 5 * night / 2  # three peak hours beat six night hours many times over
    assert lunch / 2 < morning / 3 and lunch / 2 < afternoon / 3  # a dip between two peaks
    by_day = Counter(c.started_at.weekday() for c in calls)
    weekday_mean = sum(by_day[d] for d in range(5)) / 5
    weekend_mean = (by_day[5] + by_day[6]) / 2
    assert 0.3 < weekend_mean / weekday_mean < 0.6


def test_intensity_averages_one_over_a_week() -> None:
    minutes = [MONDAY + timedelta(minutes=m) for m in range(0, 7 * 24 * 60, 5)]
    assert statistics.mean(intensity(at) for at in minutes) == pytest.approx(1, rel=0.01)


def test_spread_gives_exactly_count_in_range() -> None:
    model = TrafficModel(random.Random(3), LINES)
    times = model.spread(MONDAY, MONDAY + timedelta(days=3), 1234)
    assert len(times) == 1234 and times == sorted(times)
    assert times[0] >= MONDAY and times[-1] < MONDAY + timedelta(days=3)


def test_failures_are_a_few_percent_with_zero_duration(calls: list[SimulatedCall]) -> None:
    failed = [c for c in calls if c.status == "failed"]
    assert {c.status for c in calls} == {"completed", "failed"}
    assert 0.03 <= len(failed) / len(calls) <= 0.08
    assert all(c.duration_s == 0 for c in failed)
    assert all(c.duration_s >= 1 for c in calls if c.status == "completed")


def test_durations_have_a_short_call_bump_and_a_long_tail(calls: list[SimulatedCall]) -> None:
    durations = [c.duration_s for c in calls if c.status == "completed"]
    short = sum(d < 10 for d in durations) / len(durations)
    assert 0.08 < short < 0.2
    assert 90 < statistics.median(durations) < 240
    assert max(durations) > 15 * 60


def test_mos_mostly_good_with_a_poor_tail(calls: list[SimulatedCall]) -> None:
    mos = [c.mos for c in calls if c.mos is not None]
    assert all(1 <= m <= 4.5 and round(m, 2) == m for m in mos)
    assert sum(4.0 <= m <= 4.5 for m in mos) / len(mos) > 0.8
    assert 0.03 < sum(m < 3.5 for m in mos) / len(mos) < 0.15
    assert min(mos) < 2.5


def test_lines_have_different_loads_and_the_last_is_the_bad_one(
    calls: list[SimulatedCall],
) -> None:
    by_line = Counter(c.to_number for c in calls)
    assert set(by_line) == set(LINES)
    assert by_line[LINES[0]] > 2 * by_line[LINES[-1]]

    def poor_and_failed(line: str) -> tuple[float, float]:
        mine = [c for c in calls if c.to_number == line]
        return (
            sum(c.mos is not None and c.mos < 3.5 for c in mine) / len(mine),
            sum(c.status == "failed" for c in mine) / len(mine),
        )

    bad_poor, bad_failed = poor_and_failed(LINES[-1])
    good_poor, good_failed = poor_and_failed(LINES[0])
    assert bad_poor > 3 * good_poor and bad_failed > 2 * good_failed


def test_failed_calls_have_no_score_and_a_few_completed_ones_neither(
    calls: list[SimulatedCall],
) -> None:
    failed = [c for c in calls if c.status == "failed"]
    completed = [c for c in calls if c.status == "completed"]
    assert failed and all(c.mos is None and c.duration_s == 0 for c in failed)
    assert 0.005 < sum(c.mos is None for c in completed) / len(completed) < 0.05


def test_callers_from_several_countries_and_some_withheld(calls: list[SimulatedCall]) -> None:
    regions: Counter[str] = Counter()
    for call in calls:
        if call.from_number == WITHHELD_CALLER:
            regions["withheld"] += 1
            continue
        if call.from_number.startswith(("sip:", "client:")):
            regions[call.from_number.partition(":")[0]] += 1
            continue
        number = phonenumbers.parse(call.from_number)
        assert phonenumbers.is_valid_number(number), call.from_number
        regions[str(phonenumbers.region_code_for_number(number))] += 1
    assert {"US", "CA", "GB", "DE", "FR", "MX", "BR", "IN", "AU"} <= set(regions)
    assert regions.most_common(1)[0][0] == "US"
    assert 0.01 < regions["withheld"] / len(calls) < 0.1
    assert 0.005 < regions["sip"] / len(calls) < 0.05
    assert 0.002 < regions["client"] / len(calls) < 0.05


def test_some_callers_call_again_within_hours(calls: list[SimulatedCall]) -> None:
    last_seen: dict[str, datetime] = {}
    repeats = 0
    for call in calls:
        if call.from_number == WITHHELD_CALLER:
            continue
        previous = last_seen.get(call.from_number)
        if previous is not None and call.started_at - previous <= timedelta(hours=24):
            repeats += 1
        last_seen[call.from_number] = call.started_at
    assert 0.03 < repeats / len(calls) < 0.3


def test_a_given_line_is_kept() -> None:
    model = TrafficModel(random.Random(1), LINES)
    assert {model.call(MONDAY, to_number="+15005550006").to_number for _ in range(20)} == {
        "+15005550006"
    }


def test_no_lines_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one called number"):
        TrafficModel(random.Random(1), [])


def test_a_degraded_line_fails_often_and_most_of_its_calls_sound_poor() -> None:
    model = TrafficModel(random.Random(3), LINES)
    model.degrade(LINES[0])
    degraded = [model.call(MONDAY, to_number=LINES[0]) for _ in range(2000)]
    others = [model.call(MONDAY, to_number=LINES[1]) for _ in range(2000)]
    failed = sum(call.status == "failed" for call in degraded) / len(degraded)
    assert 0.25 < failed < 0.35
    scores = [call.mos for call in degraded if call.mos is not None]
    assert sum(mos < 3.0 for mos in scores) / len(scores) > 0.75
    assert min(scores) >= 1.0
    # The other lines are as before.
    assert sum(call.status == "failed" for call in others) / len(others) < 0.07
    assert statistics.median(call.mos for call in others if call.mos is not None) > 4.0


def test_only_a_line_of_the_model_can_degrade() -> None:
    with pytest.raises(ValueError, match="not one of the model's called numbers"):
        TrafficModel(random.Random(1), LINES).degrade("+15005550006")
