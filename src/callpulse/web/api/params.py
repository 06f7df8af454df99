"""Query parameters shared by the endpoints: the time range and the filters, checked with
errors that name the parameter and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Query

from callpulse.analytics import QueryError
from callpulse.analytics.erlang import MIN_OCCUPANCY
from callpulse.analytics.filters import make_filters
from callpulse.analytics.models import Filters
from callpulse.analytics.service import EARLIEST_YEAR
from callpulse.timezones import MAX_NAME as MAX_ZONE_NAME
from callpulse.timezones import zone

DEFAULT_SPAN = timedelta(hours=24)
MAX_SPAN = timedelta(days=400)
MAX_LIMIT = 500
MAX_ANSWER_S = 86400  # a service-level answer time beyond a day is a typo
# Far from datetime's end (year 9999), so no offset, default span or previous period overflows.
LATEST_YEAR = 9000


# The fix for each parameter, added to the validator's own words when a value does not parse.
HINTS = {
    "since": "an ISO 8601 time such as 2024-04-04T18:00:00Z (no offset means UTC)",
    "until": "an ISO 8601 time such as 2024-04-05T18:00:00Z (no offset means UTC)",
    "bucket": "one of minute, hour, day",
    "limit": f"a whole number from 1 to {MAX_LIMIT}",
    "status": "a call status such as completed or failed",
    "cursor": "the next_cursor of the previous page, unchanged",
    "call_sid": "a CallSid: up to 64 letters, digits, '_' or '-'",
    "service_level": "a fraction above 0 and below 1, such as 0.8",
    "answer_within_s": f"seconds from 0 to {MAX_ANSWER_S}, such as 20",
    "max_occupancy": f"a fraction from {MIN_OCCUPANCY} to 1, such as 0.85",
    "shrinkage": "a fraction from 0 to below 1, such as 0.3",
    "tz": "an IANA time zone name such as Europe/Berlin",
}


@dataclass(frozen=True)
class TimeRange:
    since: datetime
    until: datetime


def _utc(parameter: str, moment: datetime) -> datetime:
    if not EARLIEST_YEAR <= moment.year < LATEST_YEAR:
        years = f"{EARLIEST_YEAR} to {LATEST_YEAR - 1}"
        raise QueryError(parameter, f"out of range: give a time in the years {years}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def time_range(
    since: Annotated[
        datetime | None,
        Query(description="start, ISO 8601 (no offset: UTC); default: 24 h before until"),
    ] = None,
    until: Annotated[
        datetime | None, Query(description="end (exclusive), ISO 8601; default: now")
    ] = None,
) -> TimeRange:
    end = _utc("until", until) if until is not None else datetime.now(UTC)
    start = _utc("since", since) if since is not None else end - DEFAULT_SPAN
    if start >= end:
        raise QueryError("since", f"must be before until ({end.isoformat()})")
    if end - start > MAX_SPAN:
        raise QueryError(
            "since", f"the range may cover at most {MAX_SPAN.days} days: move since or until"
        )
    return TimeRange(start, end)


async def time_zone(
    tz: Annotated[
        str | None,
        Query(
            description="IANA time zone whose minutes, hours and days the buckets follow "
            "(default UTC), e.g. Europe/Berlin",
            max_length=MAX_ZONE_NAME,
        ),
    ] = None,
) -> ZoneInfo:
    if tz is None:
        return ZoneInfo("UTC")
    try:
        return zone(tz)
    except ValueError as exc:
        raise QueryError("tz", str(exc)) from None


async def account(
    account_sid: Annotated[str | None, Query(description="only this project / account")] = None,
) -> str | None:
    return make_filters(account_sid=account_sid).account_sid


async def filters(
    account_sid: Annotated[str | None, Depends(account)],
    to: Annotated[str | None, Query(description="only calls to this number, E.164")] = None,
    region: Annotated[
        str | None, Query(description="only callers from this ISO country code, or 'unknown'")
    ] = None,
    caller: Annotated[
        str | None, Query(description="only calls from this number (E.164) or 'withheld'")
    ] = None,
) -> Filters:
    return make_filters(account_sid, to, region, caller)
