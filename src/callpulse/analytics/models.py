"""The typed results of analytics; the JSON API serves them as they are (OpenAPI from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Bucket = Literal["minute", "hour", "day"]


class Filters(BaseModel):
    """Which calls a query covers; None means any."""

    account_sid: str | None = None
    to: str | None = Field(default=None, description="called number, E.164")
    region: str | None = Field(default=None, description="caller's ISO country code, or 'unknown'")
    caller: str | None = Field(default=None, description="caller number, E.164, or 'withheld'")


class MosBand(BaseModel):
    name: str = Field(description="G.107 user-satisfaction band")
    lower: float
    upper: float
    calls: int
    share: float | None = Field(description="fraction of completed calls with a MOS in the band")


class MosStats(BaseModel):
    scored: int = Field(description="completed calls with a MOS: what every MOS figure covers")
    coverage: float | None = Field(description="scored / completed calls")
    mean: float | None
    p05: float | None
    p50: float | None
    p95: float | None
    poor_rate: float | None = Field(description="fraction of completed calls below the poor line")
    poor_threshold: float
    bands: list[MosBand]


class DurationStats(BaseModel):
    total_s: int = Field(description="talk time of completed calls")
    timed: int = Field(description="completed calls with a duration: what these figures cover")
    acd_s: float | None = Field(description="average duration of completed calls")
    p50_s: float | None
    p90_s: float | None


class BusiestHour(BaseModel):
    start: datetime
    calls: int
    erlangs: float = Field(description="call-seconds started in the hour / 3600")


class Totals(BaseModel):
    calls: int
    completed: int
    failed: int
    success_rate: float | None = Field(description="completed / (completed + failed)")
    mos: MosStats
    duration: DurationStats
    short_call_rate: float | None = Field(
        description="fraction of completed calls shorter than the short-call line"
    )
    short_call_threshold_s: int
    repeat_callers: int = Field(
        description="calls from a caller who had called within the 24 h before"
    )
    busiest_hour: BusiestHour | None
    problems: int = Field(description="calls stored with data problems (fields not taken as sent)")


class Summary(Totals):
    since: datetime
    until: datetime
    previous: Totals = Field(description="the period of equal length just before")


class TimeseriesPoint(BaseModel):
    bucket_start: datetime
    calls: int
    completed: int
    failed: int
    success_rate: float | None
    mos_mean: float | None


class GroupRow(BaseModel):
    calls: int
    completed: int
    failed: int
    success_rate: float | None
    mos_mean: float | None
    acd_s: float | None
    problems: int = Field(description="calls with data problems")


class NumberRow(GroupRow):
    to: str
    poor_rate: float | None


class RegionRow(GroupRow):
    region: str


class DataProblem(BaseModel):
    field: str
    value: str = Field(description="the raw value as received")
    why: str


class CallItem(BaseModel):
    account_sid: str
    call_sid: str
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    region: str
    started_at: datetime
    status: str
    duration_s: int | None = Field(description="absent when not sent or not usable")
    mos: float | None = Field(description="absent when the call had no score")
    received_at: datetime
    source: str = Field(description="callback, or reconciled (recovered from the Calls API)")
    version: int
    problems: list[DataProblem] = Field(
        description="fields not taken as sent: the raw value and why"
    )

    model_config = {"populate_by_name": True}


class CallPage(BaseModel):
    calls: list[CallItem]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class QuarantineItem(BaseModel):
    id: int
    received_at: datetime
    reason: str
    errors: dict[str, str]
    method: str
    url: str
    body_size: int
    body: str = Field(description="the request body as received (truncated when too large)")


class QuarantinePage(BaseModel):
    entries: list[QuarantineItem]
    kept: int
    dropped: int
    next_cursor: str | None


class StaffingTarget(BaseModel):
    service_level: float = Field(description="fraction of calls to answer within answer_within_s")
    answer_within_s: float
    max_occupancy: float = Field(description="the largest share of their time agents may be busy")
    shrinkage: float = Field(description="share of paid time off the phones (breaks, training)")


class StaffingFigures(BaseModel):
    """Erlang C for one hour's traffic. Call durations are whole calls (IVR and queue included),
    so this is line staffing: an upper bound on agents. Null when the calls had no duration."""

    aht_s: float | None = Field(
        description="mean duration of the completed calls with a duration (none: null)"
    )
    erlangs: float | None = Field(description="calls x aht_s / 3600")
    agents: int | None = Field(description="the fewest agents meeting the target (no calls: 0)")
    scheduled: int | None = Field(description="agents / (1 - shrinkage), rounded up")
    service_level: float | None = Field(description="fraction answered within answer_within_s")
    occupancy: float | None = Field(description="erlangs / agents")
    p_wait: float | None = Field(description="probability that a call waits (Erlang C)")
    asa_s: float | None = Field(description="average speed of answer")


class StaffingInterval(StaffingFigures):
    start: datetime = Field(description="the clock hour (of the time zone asked for; UTC)")
    calls: int = Field(description="calls that arrived in the hour")


class StaffingProfileHour(StaffingFigures):
    weekday: int = Field(ge=0, le=6, description="0 Monday ... 6 Sunday, in the time zone")
    hour: int = Field(ge=0, le=23, description="hour of the day, in the time zone")
    weeks: int = Field(description="how many of this hour of the week the range holds")
    calls: float = Field(description="mean calls in this hour of the week")


class StaffingPlan(BaseModel):
    since: datetime = Field(description="the range, widened to whole clock hours")
    until: datetime
    target: StaffingTarget
    intervals: list[StaffingInterval] = Field(description="one per clock hour of the range")
    profile: list[StaffingProfileHour] = Field(
        description="per hour of the week, averaged over the weeks in the range; Monday first"
    )
