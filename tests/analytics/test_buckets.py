"""Bucket starts on a zone's wall clock: whole hours and midnights, across daylight saving."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callpulse.analytics.buckets import bucket_starts
from callpulse.store.base import from_epoch_ms, to_epoch_ms

BERLIN = ZoneInfo("Europe/Berlin")


def _starts(since: datetime, until: datetime, bucket: str, zone: str) -> list[datetime]:
    ms = bucket_starts(to_epoch_ms(since), to_epoch_ms(until), bucket, ZoneInfo(zone))
    return [from_epoch_ms(m) for m in ms]


def test_utc_buckets_are_multiples_of_their_size() -> None:
    since = datetime(2026, 5, 4, 10, 17, 3, tzinfo=UTC)
    days = _starts(since, since + timedelta(days=3), "day", "UTC")
    assert days == [datetime(2026, 5, d, tzinfo=UTC) for d in (4, 5, 6, 7)]
    hours = _starts(since, since + timedelta(hours=2), "hour", "UTC")
    assert hours == [datetime(2026, 5, 4, h, tzinfo=UTC) for h in (10, 11, 12)]


def test_days_across_daylight_saving_are_23_and_25_hours_long() -> None:
    spring = _starts(datetime(2026, 3, 28, 12, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC),
                     "day", "Europe/Berlin")  # fmt: skip
    assert [d.astimezone(BERLIN).strftime("%m-%d %H:%M") for d in spring] == [
        "03-28 00:00", "03-29 00:00", "03-30 00:00", "03-31 00:00"]  # fmt: skip
    assert [b - a for a, b in itertools.pairwise(spring)] == [
        timedelta(hours=24), timedelta(hours=23), timedelta(hours=24)]  # fmt: skip
    autumn = _starts(datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC),
                     "day", "Europe/Berlin")  # fmt: skip
    assert autumn[2] - autumn[1] == timedelta(hours=25)


def test_hours_across_the_autumn_change_stay_one_hour_long() -> None:
    hours = _starts(datetime(2026, 10, 24, 23, tzinfo=UTC), datetime(2026, 10, 25, 3, tzinfo=UTC),
                    "hour", "Europe/Berlin")  # fmt: skip
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(hours))
    # 02:00-03:00 happens twice on the wall clock: two buckets.
    assert [h.astimezone(BERLIN).hour for h in hours] == [1, 2, 2, 3]


@pytest.mark.parametrize(
    ("zone", "minute"), [("Asia/Kolkata", 30), ("America/St_Johns", 30), ("Asia/Kathmandu", 15)]
)
def test_zones_off_the_hour_start_hours_off_the_utc_hour(zone: str, minute: int) -> None:
    since = datetime(2026, 1, 10, 6, 40, tzinfo=UTC)
    hours = _starts(since, since + timedelta(hours=3), "hour", zone)
    assert {h.minute for h in hours} == {minute}
    assert all(h.astimezone(ZoneInfo(zone)).minute == 0 for h in hours)
    assert hours[0] <= since < hours[1]


def test_the_first_bucket_holds_the_start_and_the_last_ends_after_the_end() -> None:
    since = datetime(2026, 6, 1, 21, 59, tzinfo=UTC)  # 23:59 in Berlin
    until = datetime(2026, 6, 3, 22, 1, tzinfo=UTC)  # 00:01 on the 4th in Berlin
    days = _starts(since, until, "day", "Europe/Berlin")
    assert days[0] <= since and days[-1] < until
    assert [d.astimezone(BERLIN).day for d in days] == [1, 2, 3, 4]
