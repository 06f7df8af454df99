"""The callback's Timestamp: RFC 2822 as senders send it (and variants), ISO 8601 or Unix
seconds, to a UTC time in whole milliseconds, or why not."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

# Call times every backend and partition scheme holds; outside it a time is a sender's error.
EARLIEST_CALL = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_CALL = datetime(2100, 1, 1, tzinfo=UTC)
_UNIX = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
_WEEKDAY = re.compile(r"^\s*[A-Za-z]{2,9}\.?,\s*")
_MONTH_NAMES = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES.split("|"), 1)}
_CANONICAL = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (" + _MONTH_NAMES + r") ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)
_LONG_MONTH = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?", re.I)


def _normalized_rfc2822(value: str) -> str:
    """Variants ``email.utils`` rejects: a long weekday or month (``Thur, 20 Sept 2018``)."""
    return _LONG_MONTH.sub(lambda m: m.group(1), _WEEKDAY.sub("", value))


def parse(value: Any) -> tuple[datetime | None, str | None]:
    if value is None or value == "":
        return None, "missing"
    if isinstance(value, bool):
        return None, "not a time"
    candidate: datetime | None = None
    try:
        if isinstance(value, int | float) or (
            isinstance(value, str) and _UNIX.fullmatch(value.strip())
        ):
            candidate = datetime.fromtimestamp(float(value), UTC)
        elif isinstance(value, str):
            candidate = _parse_text(value.strip())
    except (ValueError, OverflowError, OSError, TypeError, IndexError):
        candidate = None
    if candidate is None:
        return None, (
            "unparseable: expected RFC 2822 ('Thu, 04 Apr 2024 18:32:15 +0000'), ISO 8601 "
            "or Unix seconds"
        )
    try:
        utc = candidate.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 9999-12-31T23:59:59-01:00 is past datetime.max
        return None, "out of range"
    if not EARLIEST_CALL <= utc < LATEST_CALL:
        return None, f"out of range ({EARLIEST_CALL.year}-{LATEST_CALL.year - 1})"
    # Whole milliseconds, what every backend stores: bucket and cursor arithmetic stays exact.
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000), None


def _canonical_rfc2822(value: str) -> datetime | None:
    """What every sender sends (``Thu, 04 Apr 2024 18:32:15 +0000``), read without
    ``email.utils``, which costs several times as much on each callback; None for any other form."""
    match = _CANONICAL.fullmatch(value)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
    zone = timezone(-offset if sign == "-" else offset)
    return datetime(
        int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=zone
    )


def _parse_text(value: str) -> datetime | None:
    canonical = _canonical_rfc2822(value)
    if canonical is not None:
        return canonical
    for attempt in (value, _normalized_rfc2822(value)):
        try:
            parsed = email.utils.parsedate_to_datetime(attempt)
        except (TypeError, ValueError, IndexError):
            continue
        # RFC 2822 "-0000": the time is UTC, the sender's zone unknown.
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value)  # raises ValueError when it is not ISO 8601 either
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
