"""Query parameters shared by the endpoints: the time range and the filters, checked with
errors that name the parameter and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Query

from callpulse import moments
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
    "since": moments.MOMENT_FORM,
    "until": moments.MOMENT_FORM,
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


def _utc(parameter: str, text: str, now: datetime) -> datetime:
    """ISO 8601 or an age before now, as the CLI takes them."""
    years = f"out of range: give a time in the years {EARLIEST_YEAR} to {LATEST_YEAR - 1}"
    try:
        moment = moments.parse_moment(text, now)
    except moments.OutOfRange:
        raise QueryError(parameter, years) from None
    except ValueError as exc:
        raise QueryError(parameter, str(exc)) from None
    if not EARLIEST_YEAR <= moment.year < LATEST_YEAR:
        raise QueryError(parameter, years)
    return moment


_TIME = "ISO 8601 (no offset: UTC) or an age before now such as 24h or 7d"


async def time_range(
    since: Annotated[
        str | None,
        Query(description=f"start: {_TIME}; default: 24 h before until", max_length=64),
    ] = None,
    until: Annotated[
        str | None, Query(description=f"end (exclusive): {_TIME}; default: now", max_length=64)
    ] = None,
) -> TimeRange:
    now = datetime.now(UTC)
    end = _utc("until", until, now) if until is not None else now
    start = _utc("since", since, now) if since is not None else end - DEFAULT_SPAN
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
