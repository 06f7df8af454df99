"""The JSON API under ``/api/v1``: KPIs, time series, per-number and per-region rows, staffing,
calls, the quarantine and the alerts. Responses are the analytics models as they are, so the
OpenAPI document at ``/api/v1/openapi.json`` is generated from the same types the queries return.

Endpoints are plain ``def``: FastAPI runs them in its thread pool, so the blocking queries never
hold up the event loop (nor the callback receiver sharing it). So is the credentials check (a
session cookie is looked up among the revoked ones); the parameter checks are ``async``: cheap,
they run on the loop without a thread hop.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from callpulse.alerts.overview import MAX_HISTORY, Alerts, overview
from callpulse.alerts.rules import Rule
from callpulse.analytics import Analytics, BadCursor, QueryError
from callpulse.analytics.erlang import MIN_OCCUPANCY
from callpulse.analytics.models import (
    Bucket,
    CallItem,
    CallPage,
    Filters,
    NumberRow,
    QuarantinePage,
    RegionRow,
    StaffingPlan,
    Summary,
    TimeseriesPoint,
)
from callpulse.web.api import errors
from callpulse.web.api.params import (
    MAX_ANSWER_S,
    MAX_LIMIT,
    TimeRange,
    account,
    filters,
    time_range,
    time_zone,
)
from callpulse.web.auth import SESSION_COOKIE, Access

__all__ = ["create_api"]

_bearer = HTTPBearer(auto_error=False, description="the API token (CALLPULSE_API_TOKEN)")
_session = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="the session the dashboard's log-in sets"
)

RangeParam = Annotated[TimeRange, Depends(time_range)]
FiltersParam = Annotated[Filters, Depends(filters)]
CursorParam = Annotated[
    str | None, Query(description="next_cursor of the previous page", max_length=512)
]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1-{MAX_LIMIT}")]


def create_api(analytics: Analytics, access: Access, rules: Sequence[Rule] = ()) -> FastAPI:
    def authorized(
        request: Request,
        response: Response,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        _cookie: Annotated[str | None, Depends(_session)],
    ) -> None:
        access.check(request, bearer.credentials if bearer is not None else None)
        response.headers["Cache-Control"] = "no-store"  # callers' numbers: keep out of caches

    api = FastAPI(
        title="callpulse",
        summary="Inbound call KPIs from SignalWire / Twilio status callbacks",
        version="1",
        openapi_url="/openapi.json",
        # The interactive docs load their scripts from a CDN: useless offline, so they are off.
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # its Location would come from the Host header
        dependencies=[Depends(authorized)],
        responses={
            400: {"model": errors.ErrorBody, "description": "a bad parameter, named"},
            401: {"model": errors.ErrorBody, "description": "no or wrong API token"},
            403: {"model": errors.ErrorBody, "description": "no API token configured"},
        },
    )
    errors.install(api)

    @api.get("/summary", response_model=Summary)
    def summary(span: RangeParam, where: FiltersParam) -> Summary:
        """The KPIs of the range, and of the period of equal length before it."""
        return analytics.summary(span.since, span.until, where)

    @api.get("/timeseries", response_model=list[TimeseriesPoint])
    def timeseries(
        span: RangeParam,
        where: FiltersParam,
        tz: Annotated[ZoneInfo, Depends(time_zone)],
        bucket: Annotated[Bucket, Query(description="bucket size")] = "hour",
    ) -> list[TimeseriesPoint]:
        """Volume, success rate and MOS per minute, hour or day of a time zone (UTC)."""
        return analytics.timeseries(span.since, span.until, where, bucket, tz)

    @api.get("/numbers", response_model=list[NumberRow])
    def numbers(span: RangeParam, where: FiltersParam) -> list[NumberRow]:
        """One row per called number, busiest first."""
        return analytics.numbers(span.since, span.until, where)

    @api.get("/regions", response_model=list[RegionRow])
    def regions(span: RangeParam, where: FiltersParam) -> list[RegionRow]:
        """One row per caller region (ISO country code from the caller's number)."""
        return analytics.regions(span.since, span.until, where)

    @api.get("/staffing", response_model=StaffingPlan)
    def staffing(
        span: RangeParam,
        where: FiltersParam,
        tz: Annotated[ZoneInfo, Depends(time_zone)],
        service_level: Annotated[
            float, Query(gt=0, lt=1, description="fraction of calls to answer in time")
        ] = 0.8,
        answer_within_s: Annotated[
            float, Query(ge=0, le=MAX_ANSWER_S, description="the answer time, seconds")
        ] = 20,
        max_occupancy: Annotated[
            float,
            Query(ge=MIN_OCCUPANCY, le=1, description="the largest share of time agents are busy"),
        ] = 0.85,
        shrinkage: Annotated[
            float, Query(ge=0, lt=1, description="share of paid time off the phones")
        ] = 0,
    ) -> StaffingPlan:
        """Erlang C agents per clock hour of a time zone (the range widened to whole hours) and
        per hour of the week; durations are whole calls, so this is line staffing, an upper
        bound."""
        return analytics.staffing(
            span.since, span.until, where,
            service_level=service_level, answer_within_s=answer_within_s,
            max_occupancy=max_occupancy, shrinkage=shrinkage, zone=tz,
        )  # fmt: skip

    @api.get("/calls", response_model=CallPage)
    def calls(
        span: RangeParam,
        where: FiltersParam,
        status: Annotated[
            str | None,
            Query(description="only calls with this status", pattern=r"^[a-z-]{1,32}$"),
        ] = None,
        cursor: CursorParam = None,
        limit: LimitParam = 100,
        problems: Annotated[
            bool, Query(description="only calls with data problems (fields not taken as sent)")
        ] = False,
    ) -> CallPage:
        """Calls in the range, newest first; follow next_cursor for older ones."""
        try:
            return analytics.calls(
                span.since, span.until, where,
                status=status, cursor=cursor, limit=limit, with_problems=problems,
            )  # fmt: skip
        except BadCursor:
            raise QueryError(
                "cursor", "not a cursor of this query: pass next_cursor as it came, unchanged"
            ) from None

    @api.get(
        "/calls/{call_sid}",
        response_model=CallItem,
        responses={404: {"model": errors.ErrorBody, "description": "no such call"}},
    )
    def call(
        call_sid: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
        account_sid: Annotated[str | None, Depends(account)],
    ) -> CallItem:
        """One call (give account_sid when the same CallSid exists in several accounts)."""
        found = analytics.call(call_sid, account_sid)
        if found is None:
            raise errors.NotFound(f"no call with CallSid {call_sid}")
        return found

    @api.get("/quarantine", response_model=QuarantinePage)
    def quarantine(cursor: CursorParam = None, limit: LimitParam = 50) -> QuarantinePage:
        """Rejected requests, newest first, with the reason and the body as received."""
        try:
            return analytics.quarantine(cursor=cursor, limit=limit)
        except BadCursor:
            raise QueryError(
                "cursor", "not a cursor of this listing: pass next_cursor as it came, unchanged"
            ) from None

    @api.get("/alerts", response_model=Alerts)
    def alerts(
        limit: Annotated[
            int, Query(ge=1, le=MAX_HISTORY, description=f"history entries, 1-{MAX_HISTORY}")
        ] = 50,
        rule: Annotated[
            str | None,
            Query(description="only this rule", pattern=r"^[A-Za-z0-9_.-]{1,64}$"),
        ] = None,
    ) -> Alerts:
        """Pending and firing alerts, and the transitions of the alert rules, newest first."""
        return overview(analytics.store, datetime.now(UTC), limit=limit, rule=rule, rules=rules)

    return api
