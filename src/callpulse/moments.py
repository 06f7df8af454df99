"""Times as people type them, the same for the CLI and the API: ISO 8601 (UTC unless it has an
offset) or an age before now such as 24h or 7d."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

AGE_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
AGE_FORM = "a span such as 400d, 12h, 15m or 90s"
MOMENT_FORM = (
    "an ISO 8601 time such as 2024-04-04T18:00:00Z (no offset means UTC) "
    "or an age such as 24h or 7d"
)
MAX_AGE_DIGITS = 9  # a billion days is past datetime's range anyway: keep the arithmetic small


class OutOfRange(ValueError):
    """A well-formed time that no datetime can hold once in UTC (or an age reaching too far)."""


def parse_age(text: str) -> timedelta:
    """A span such as 400d, 12h, 15m or 90s; ValueError naming the expected form otherwise."""
    number, unit = text[:-1], text[-1:]
    if (
        unit not in AGE_UNITS
        or not number.isascii()
        or not number.isdigit()
        or len(number) > MAX_AGE_DIGITS
        or int(number) == 0
    ):
        raise ValueError(f"expected {AGE_FORM}, got {text!r}")
    return timedelta(seconds=int(number) * AGE_UNITS[unit])


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 or an age before ``now``, in UTC; ValueError naming both forms otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            age = parse_age(text)
        except ValueError:
            raise ValueError(f"expected {MOMENT_FORM}, got {text[:40]!r}") from None
        try:
            return (now or datetime.now(UTC)) - age
        except OverflowError:
            raise OutOfRange(f"out of range: {text} reaches back before the year 1") from None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise OutOfRange(f"out of range: {text} is beyond the years a time can have") from None
