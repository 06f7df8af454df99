"""Query parameters shared by the endpoints: the time range and the filters, checked with
errors that name the parameter and the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query

from callpulse.analytics import QueryError
from callpulse.analytics.models import Filters

DEFAULT_SPAN = timedelta(hours=24)
MAX_SPAN = timedelta(days=400)
MAX_LIMIT = 500

_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# '+' in a query string decodes to a space when the client forgot to write %2B: accept it.
_E164 = re.compile(r"[+ ]?(\d{1,15})")
_REGION = re.compile(r"[A-Za-z]{2}")


# The fix for each parameter, added to the validator's own words when a value does not parse.
HINTS = {
    "since": "an ISO 8601 time such as 2024-04-04T18:00:00Z (no offset means UTC)",
    "until": "an ISO 8601 time such as 2024-04-05T18:00:00Z (no offset means UTC)",
    "bucket": "one of minute, hour, day",
    "limit": f"a whole number from 1 to {MAX_LIMIT}",
    "status": "a call status such as completed or failed",
}


@dataclass(frozen=True)
class TimeRange:
    since: datetime
    until: datetime


def _utc(moment: datetime) -> datetime:
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
    end = _utc(until) if until is not None else datetime.now(UTC)
    start = _utc(since) if since is not None else end - DEFAULT_SPAN
    if start >= end:
        raise QueryError("since", f"must be before until ({end.isoformat()})")
    if end - start > MAX_SPAN:
        raise QueryError(
            "since", f"the range may cover at most {MAX_SPAN.days} days: move since or until"
        )
    return TimeRange(start, end)


def _e164(parameter: str, value: str, extra: str = "") -> str:
    match = _E164.fullmatch(value)
    if match is None:
        raise QueryError(
            parameter,
            f"expected an E.164 number such as +18005559876{extra} (write '+' as %2B), "
            f"got {value!r}",
        )
    return "+" + match.group(1)


async def account(
    account_sid: Annotated[str | None, Query(description="only this project / account")] = None,
) -> str | None:
    if account_sid is not None and not _SID.fullmatch(account_sid):
        raise QueryError("account_sid", "expected 1-64 letters, digits, '-' or '_'")
    return account_sid


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
    if to is not None:
        to = _e164("to", to)
    if region is not None:
        if region.lower() == "unknown":
            region = "unknown"
        elif _REGION.fullmatch(region):
            region = region.upper()
        else:
            raise QueryError(
                "region",
                f"expected a two-letter country code such as US, or unknown; got {region!r}",
            )
    if caller is not None and caller != "withheld":
        caller = _e164("caller", caller, " or withheld")
    return Filters(account_sid=account_sid, to=to, region=region, caller=caller)
