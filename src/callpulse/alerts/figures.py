"""The window figures of every rule and scope, from the Analytics service (no SQL of its own)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from callpulse.alerts.evaluate import OK, AlertState, Figure, Key
from callpulse.alerts.rules import Rule
from callpulse.analytics import Analytics
from callpulse.analytics.models import Filters

WEEK = timedelta(days=7)


def scope_label(filters: Filters) -> str:
    parts = [
        f"{key}={value}"
        for key in ("account_sid", "to", "region")
        if (value := getattr(filters, key)) is not None
    ]
    return ",".join(parts) or "all"


def _windows(rule: Rule, now: datetime) -> list[tuple[datetime, datetime]]:
    """The rule's window ending now, then (volume, no_data) the same window in earlier weeks."""
    weeks = rule.baseline_weeks if rule.uses_baseline else 0
    return [(now - k * WEEK - rule.window, now - k * WEEK) for k in range(weeks + 1)]


def _scopes(
    analytics: Analytics,
    rule: Rule,
    base: Filters,
    now: datetime,
    previous: Iterable[AlertState],
) -> list[Filters]:
    if rule.per is None:
        return [base]
    numbers: set[str] = set()
    for since, until in _windows(rule, now):
        numbers.update(row.to for row in analytics.numbers(since, until, base))
    # A number alerting now is judged again even with no calls: it must be able to resolve.
    for state in previous:
        if state.rule == rule.name and state.state != OK:
            numbers.update(
                part.removeprefix("to=")
                for part in state.scope.split(",")
                if part.startswith("to=")
            )
    return [base.model_copy(update={"to": number}) for number in sorted(numbers)]


def figure_of(analytics: Analytics, rule: Rule, filters: Filters, now: datetime) -> Figure:
    windows = _windows(rule, now)
    since, until = windows[0]
    totals = analytics.totals(since, until, filters)
    if rule.uses_baseline:
        earlier = [analytics.totals(s, u, filters).calls for s, u in windows[1:]]
        return Figure(float(totals.calls), totals.calls, sum(earlier) / len(earlier))
    if rule.metric == "success_rate":
        return Figure(totals.success_rate, totals.completed + totals.failed)
    if rule.metric == "poor_rate":
        return Figure(totals.mos.poor_rate, totals.mos.scored)
    return Figure(totals.mos.p50, totals.mos.scored)


def collect(
    analytics: Analytics,
    rules: Sequence[Rule],
    previous: Mapping[Key, AlertState],
    now: datetime,
) -> dict[Key, Figure]:
    figures: dict[Key, Figure] = {}
    for rule in rules:
        if not rule.enabled:
            continue
        base = Filters(**dict(rule.scope))
        for filters in _scopes(analytics, rule, base, now, previous.values()):
            figures[(rule.name, scope_label(filters))] = figure_of(analytics, rule, filters, now)
    return figures
