"""`callpulse report`: the call-center KPIs as terminal tables (or JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from callpulse.analytics import Analytics, QueryError
from callpulse.analytics.filters import make_filters
from callpulse.analytics.models import Totals
from callpulse.cli.base import (
    cli,
    database_option,
    option_error,
    parse_moment,
    settings_of,
    store_of,
)
from callpulse.export import iso_utc


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _count(value: int) -> str:
    return f"{value:,}"


def _change(now: float | None, before: float | None, kind: str = "value") -> str:
    if now is None or before is None:
        return ""
    if kind == "rate":  # rates change by percentage points
        return f"{(now - before) * 100:+.1f} pt"
    if kind == "mos":  # a score: its difference, as the dashboard shows it
        return f"{now - before:+.2f}"
    return f"{(now - before) / before:+,.0%}" if before else ""


Row = tuple[str, str, str, str]


def _compare(name: str, now: float | None, before: float | None, kind: str) -> Row:
    show = {"count": lambda v: _number(v, 0), "rate": _percent, "value": _number,
            "mos": _number}[kind]  # fmt: skip
    return (name, show(now), show(before), _change(now, before, kind))


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
        _compare("MOS mean", cur.mos.mean, prev.mos.mean, "mos"),
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
@database_option()
@click.option("--since", callback=parse_moment, help="Start: ISO 8601 or an age (default 24h).")
@click.option("--until", callback=parse_moment, help="End (exclusive): ISO 8601 or an age.")
@click.option("--number", "to", help="Only calls to this number (E.164).")
@click.option("--region", help="Only callers from this country (ISO code such as GB).")
@click.option("--caller", help="Only calls from this number (E.164), or withheld.")
@click.option("--account", "account_sid", help="Only this AccountSid (project).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON document.")
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
) -> None:
    """Success rate, call quality and volume for a period, against the period before.

    Example: callpulse report --since 7d --number +18005550100
    """
    until = until or datetime.now(UTC)
    since = since or until - timedelta(hours=24)
    with store_of(ctx) as store:
        analytics = Analytics(store, settings_of(ctx))
        try:
            filters = make_filters(account_sid, to, region, caller)
            summary = analytics.summary(since, until, filters)
            numbers = analytics.numbers(since, until, filters)
            regions = analytics.regions(since, until, filters)
        except QueryError as exc:
            raise option_error(exc.parameter, exc) from None
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
            f"busiest hour: {iso_utc(hour.start)}, {_count(hour.calls)} calls, "
            f"{hour.erlangs:.2f} Erlangs"
        )
    bands = Table("MOS band (G.107)", "range", "calls", "share", title="call quality")
    for band in summary.mos.bands:
        bands.add_row(band.name, f"{band.lower:.2f}-{band.upper:.2f}", _count(band.calls),
                      _percent(band.share))  # fmt: skip
    console.print(bands)
    by_number = Table("number", "calls", "success", "MOS", "poor", "ACD (s)", title="per number")
    for n in numbers:
        by_number.add_row(n.to, _count(n.calls), _percent(n.success_rate), _number(n.mos_mean),
                          _percent(n.poor_rate), _number(n.acd_s, 0))  # fmt: skip
    console.print(by_number)
    by_region = Table("region", "calls", "success", "MOS", "ACD (s)", title="per caller region")
    for r in regions:
        by_region.add_row(r.region, _count(r.calls), _percent(r.success_rate), _number(r.mos_mean),
                          _number(r.acd_s, 0))  # fmt: skip
    console.print(by_region)
