"""Ages and times as the CLI and the API take them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callpulse.moments import OutOfRange, parse_age, parse_moment

NOW = datetime(2024, 4, 4, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "span"),
    [("400d", timedelta(days=400)), ("12h", timedelta(hours=12)), ("15m", timedelta(minutes=15)),
     ("90s", timedelta(seconds=90))],
)  # fmt: skip
def test_ages(text: str, span: timedelta) -> None:
    assert parse_age(text) == span
    assert parse_moment(text, NOW) == NOW - span


@pytest.mark.parametrize(
    "text", ["0d", "d", "7", "7w", "-7d", "1.5h", "٣d", "7 d", "9999999999d", ""]
)
def test_not_ages(text: str) -> None:
    with pytest.raises(ValueError, match="expected a span such as 400d"):
        parse_age(text)
    with pytest.raises(ValueError, match=r"expected an ISO 8601 time .* or an age such as 24h"):
        parse_moment(text, NOW)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-04-04T18:00:00Z", NOW),
        ("2024-04-04T18:00:00", NOW),  # no offset: UTC
        ("2024-04-04T20:00:00+02:00", NOW),
        ("2024-04-04", NOW.replace(hour=0)),
    ],
)
def test_iso_8601_in_utc(text: str, moment: datetime) -> None:
    parsed = parse_moment(text, NOW)
    assert parsed == moment and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_times_past_the_calendar_are_out_of_range(text: str) -> None:
    with pytest.raises(OutOfRange, match="out of range"):
        parse_moment(text, NOW)
    with pytest.raises(OutOfRange, match="before the year 1"):
        parse_moment("999999999d", NOW)
