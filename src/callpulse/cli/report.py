"""`callpulse report`: the call-center KPIs, or the staffing they call for, as terminal tables
(or JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

from callpulse.analytics import Analytics, QueryError
from callpulse.analytics.filters import make_filters
from callpulse.analytics.models import StaffingFigures, StaffingPlan, Totals
from callpulse.cli.base import cli, parse_moment, settings_of, store_of
from callpulse.errors import CallpulseError
from callpulse.export import iso_utc
from callpulse.timezones import zone


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _change(now: float | None, before: float | None, points: bool = False) -> str:
    if now is None or before is None:
        return ""
    if points:  # rates change by percentage points
        return f"{(now - before) * 100:+.1f} pt"
    return f"{(now - before) / before:+.0%}" if before else ""


Row = tuple[str, str, str, str]
# analytics' names for the options
_OPTIONS = {
    "to": "number",
    "account_sid": "account",
    "service_level": "service-level",
    "answer_within_s": "answer-within",
    "max_occupancy": "max-occupancy",
}
_TARGET_OPTIONS = ("service_level", "answer_within_s", "max_occupancy", "shrinkage")


def _compare(name: str, now: float | None, before: float | None, kind: str) -> Row:
    show = {"count": lambda v: _number(v, 0), "rate": _percent, "value": _number}[kind]
    return (name, show(now), show(before), _change(now, before, points=kind == "rate"))


def _spread(name: str, cur: tuple[float | None, ...], prev: tuple[float | None, ...],
            digits: int) -> Row:  # fmt: skip
    return (
        name,
        " / ".join(_number(v, digits) for v in cur),
        " / ".join(_number(v, digits) for v in prev),
        "",
    )


def _kpi_rows(cur: Totals, prev: Totals) -> list[Row]:
    return [
        _compare("calls", cur.calls, prev.calls, "count"),
        _compare("completed", cur.completed, prev.completed, "count"),
        _compare("failed", cur.failed, prev.failed, "count"),
        _compare("success rate", cur.success_rate, prev.success_rate, "rate"),
        _compare("MOS mean", cur.mos.mean, prev.mos.mean, "value"),
        _spread(
            "MOS p05 / p50 / p95",
            (cur.mos.p05, cur.mos.p50, cur.mos.p95),
            (prev.mos.p05, prev.mos.p50, prev.mos.p95),
            2,
        ),
        _compare(
            f"poor calls (MOS < {cur.mos.poor_threshold})",
            cur.mos.poor_rate,
            prev.mos.poor_rate,
            "rate",
        ),
        _compare(
            "talk time (h)", cur.duration.total_s / 3600, prev.duration.total_s / 3600, "value"
        ),
        _compare("average duration (s)", cur.duration.acd_s, prev.duration.acd_s, "value"),
        _spread(
            "duration p50 / p90 (s)",
            (cur.duration.p50_s, cur.duration.p90_s),
            (prev.duration.p50_s, prev.duration.p90_s),
            0,
        ),
        _compare(
            f"short calls (< {cur.short_call_threshold_s} s)",
            cur.short_call_rate,
            prev.short_call_rate,
            "rate",
        ),
        _compare("repeat callers (24 h)", cur.repeat_callers, prev.repeat_callers, "count"),
    ]


@cli.command()
@click.option("--since", callback=parse_moment, help="Start: ISO 8601 or an age (default 24h).")
@click.option("--until", callback=parse_moment, help="End (exclusive): ISO 8601 or an age.")
@click.option("--number", "to", help="Only calls to this number (E.164).")
@click.option("--region", help="Only callers from this country (ISO code such as GB).")
@click.option("--caller", help="Only calls from this number (E.164), or withheld.")
@click.option("--account", "account_sid", help="Only this AccountSid (project).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON document.")
@click.option(
    "--staffing", is_flag=True, help="Erlang C agents per hour and per hour of the week instead."
)
@click.option(
    "--service-level", type=float, help="With --staffing: share answered in time (default 0.8)."
)
@click.option(
    "--answer-within",
    "answer_within_s",
    type=float,
    help="With --staffing: the answer time in seconds (default 20).",
)
@click.option(
    "--max-occupancy", type=float, help="With --staffing: the busiest agents may be (0.85)."
)
@click.option("--shrinkage", type=float, help="With --staffing: time off the phones (default 0).")
@click.option(
    "--tz", help="With --staffing: hours of this IANA time zone (default CALLPULSE_TIMEZONE)."
)
@click.pass_context
def report(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    to: str | None,
    region: str | None,
    caller: str | None,
    account_sid: str | None,
    as_json: bool,
    staffing: bool,
    service_level: float | None,
    answer_within_s: float | None,
    max_occupancy: float | None,
    shrinkage: float | None,
    tz: str | None,
) -> None:
    """Success rate, call quality and volume for a period, against the period before; or, with
    --staffing, the agents each hour needs for a service level (Erlang C).

    Example: callpulse report --since 7d --number +18005550100
    """
    until = until or datetime.now(UTC)
    since = since or until - timedelta(hours=24)
    target = zip(_TARGET_OPTIONS, (service_level, answer_within_s, max_occupancy, shrinkage),
                 strict=True)  # fmt: skip
    given: dict[str, Any] = {name: value for name, value in target if value is not None}
    if tz is not None:
        given["tz"] = tz
    if given and not staffing:
        option = _OPTIONS.get(next(iter(given)), next(iter(given)))
        raise CallpulseError(f"--{option}: only with --staffing")
    try:
        wall = zone(given.pop("tz", None) or settings_of(ctx).timezone)
    except ValueError as exc:
        raise CallpulseError(f"--tz: {exc}") from None
    with store_of(ctx) as store:
        analytics = Analytics(store, settings_of(ctx))
        try:
            filters = make_filters(account_sid, to, region, caller)
            if staffing:
                plan = analytics.staffing(since, until, filters, zone=wall, **given)
            else:
                summary = analytics.summary(since, until, filters)
                numbers = analytics.numbers(since, until, filters)
                regions = analytics.regions(since, until, filters)
        except QueryError as exc:
            if exc.parameter == "erlangs":  # the calls, not an option, are at fault
                raise CallpulseError(str(exc)) from None
            option = _OPTIONS.get(exc.parameter, exc.parameter)
            raise CallpulseError(f"--{option}: {exc}") from None
    if staffing:
        _print_staffing(plan, as_json, wall)
        return
    if as_json:
        click.echo(
            json.dumps(
                {
                    "summary": summary.model_dump(mode="json"),
                    "numbers": [row.model_dump(mode="json") for row in numbers],
                    "regions": [row.model_dump(mode="json") for row in regions],
                },
                indent=2,
            )
        )
        return
    console = Console()
    kpis = Table(title=f"calls {iso_utc(since)} → {iso_utc(until)}", title_justify="left")
    for column in ("", "this period", "previous period", "change"):
        kpis.add_column(column, justify="right" if column else "left")
    for values in _kpi_rows(summary, summary.previous):
        kpis.add_row(*values)
    console.print(kpis)
    if summary.busiest_hour is not None:
        hour = summary.busiest_hour
        console.print(
            f"busiest hour: {iso_utc(hour.start)}, {hour.calls} calls, {hour.erlangs:.2f} Erlangs"
        )
    bands = Table("MOS band (G.107)", "range", "calls", "share", title="call quality")
    for band in summary.mos.bands:
        bands.add_row(band.name, f"{band.lower:.2f}-{band.upper:.2f}", str(band.calls),
                      _percent(band.share))  # fmt: skip
    console.print(bands)
    by_number = Table("number", "calls", "success", "MOS", "poor", "ACD (s)", title="per number")
    for n in numbers:
        by_number.add_row(n.to, str(n.calls), _percent(n.success_rate), _number(n.mos_mean),
                          _percent(n.poor_rate), _number(n.acd_s, 0))  # fmt: skip
    console.print(by_number)
    by_region = Table("region", "calls", "success", "MOS", "ACD (s)", title="per caller region")
    for r in regions:
        by_region.add_row(r.region, str(r.calls), _percent(r.success_rate), _number(r.mos_mean),
                          _number(r.acd_s, 0))  # fmt: skip
    console.print(by_region)


def _staffing_cells(row: StaffingFigures) -> list[str]:
    agents = "—" if row.agents is None else str(row.agents)
    rostered = "—" if row.scheduled is None else str(row.scheduled)
    return [
        _number(row.aht_s, 0), _number(row.erlangs), agents, rostered,
        _percent(row.service_level), _percent(row.occupancy), _percent(row.p_wait),
        _number(row.asa_s, 1),
    ]  # fmt: skip


_STAFFING_COLUMNS = ("AHT s", "Erl", "agents", "sched", "SL", "occ", "P(wait)", "ASA s")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _compact(*first: str, title: str) -> Table:
    """Ten columns or so fit 80 characters only without borders and edge padding."""
    table = Table(
        title=title,
        title_justify="left",
        box=None,
        padding=(0, 0, 0, 1),
        header_style="bold underline",
    )
    for name in (*first, *_STAFFING_COLUMNS):
        table.add_column(name, justify="left" if name in first[:1] else "right", no_wrap=True)
    return table


def _print_staffing(plan: StaffingPlan, as_json: bool, wall: ZoneInfo) -> None:
    if as_json:
        click.echo(json.dumps(plan.model_dump(mode="json"), indent=2))
        return
    t = plan.target
    goal = (
        f"{t.service_level:.0%} answered within {t.answer_within_s:g} s, occupancy at most "
        f"{t.max_occupancy:.0%}, shrinkage {t.shrinkage:.0%}"
    )
    console = Console()
    hours = _compact(
        f"hour ({wall.key})",
        "calls",
        title=f"staffing {iso_utc(plan.since)} → {iso_utc(plan.until)}: {goal}",
    )
    for row in plan.intervals:
        local = row.start.astimezone(wall).strftime("%Y-%m-%d %H:%M")
        hours.add_row(local, str(row.calls), *_staffing_cells(row))
    console.print(hours)
    week = _compact("hour of week", "weeks", "calls", title="profile: per hour of the week")
    for slot in plan.profile:
        week.add_row(f"{_DAYS[slot.weekday]} {slot.hour:02d}:00", str(slot.weeks),
                     _number(slot.calls, 1), *_staffing_cells(slot))  # fmt: skip
    console.print(week)
    console.print(
        "CallDuration is the whole call (IVR and queue included): this is line staffing, "
        "an upper bound on agents."
    )
