"""What the API and CLI show of alerts: the active ones and the history (pydantic: the OpenAPI
schemas), read from the store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from callpulse.alerts.evaluate import FIRING, OK, PENDING, RESOLVED, AlertState
from callpulse.alerts.rules import Rule
from callpulse.store.alerts import HistoryRow
from callpulse.store.protocols import AlertTables

MAX_HISTORY = 500


class AlertItem(BaseModel):
    rule: str
    metric: str | None = Field(
        default=None, description="the rule's metric (none when the rule is no longer configured)"
    )
    severity: str | None = Field(default=None, description="the rule's severity")
    state: str = Field(description="pending, firing or resolved (history: the state entered)")
    scope: str = Field(description="all, or key=value filters such as to=+18005559876")
    value: float | None = Field(description="the rule's figure over its window")
    threshold: float | None = Field(description="the bound crossed (or to cross to resolve)")
    started_at: datetime | None = Field(description="when it started firing")
    resolved_at: datetime | None
    at: datetime | None = Field(default=None, description="when this state was entered")
    silenced_until: datetime | None = Field(default=None, description="notifications held")


class Alerts(BaseModel):
    active: list[AlertItem] = Field(description="pending and firing alerts")
    history: list[AlertItem] = Field(description="transitions, newest first")


def _active(state: AlertState, silenced: dict[str, datetime], rule: Rule | None) -> AlertItem:
    return AlertItem(
        rule=state.rule,
        metric=rule.metric if rule else None,
        severity=rule.severity if rule else None,
        state=state.state,
        scope=state.scope,
        value=state.value,
        threshold=state.threshold,
        started_at=state.started_at,
        resolved_at=None,
        at=state.changed_at,
        silenced_until=silenced.get(state.rule),
    )


def _past(row: HistoryRow, rule: Rule | None) -> AlertItem:
    t = row.transition
    return AlertItem(
        rule=t.rule,
        metric=rule.metric if rule else None,
        severity=rule.severity if rule else None,
        state=t.to_state,
        scope=t.scope,
        value=t.value,
        threshold=t.threshold,
        started_at=t.started_at,
        resolved_at=t.at if t.to_state == RESOLVED else None,
        at=t.at,
    )


def overview(
    store: AlertTables,
    now: datetime,
    limit: int = 50,
    rule: str | None = None,
    rules: Sequence[Rule] = (),
) -> Alerts:
    """``rules``: the configured ones, whose metric and severity each item carries."""
    by_name = {r.name: r for r in rules}
    with store.alert_book(read_only=True) as book:
        assert book is not None
        silenced = {s.rule: s.until for s in book.silences(now)}
        states = book.states()
        history = book.history(min(limit, MAX_HISTORY), rule)
    active = [
        _active(s, silenced, by_name.get(s.rule))
        for s in states.values()
        if s.state in (PENDING, FIRING) and rule in (None, s.rule)
    ]
    active.sort(key=lambda item: (item.state != FIRING, item.rule, item.scope))
    return Alerts(
        active=active, history=[_past(row, by_name.get(row.transition.rule)) for row in history]
    )


def state_counts(store: AlertTables, rules: Sequence[Rule]) -> dict[tuple[str, str], int]:
    """(rule, state) → scopes, for every enabled rule and each of ok, pending and firing (a
    resolved alert is ok again); zeros included, so "firing > 0" has a series to test."""
    counts = {(r.name, s): 0 for r in rules if r.enabled for s in (OK, PENDING, FIRING)}
    with store.alert_book(read_only=True) as book:
        assert book is not None
        states = book.states()
    for state in states.values():
        key = (state.rule, OK if state.state == RESOLVED else state.state)
        if key in counts:
            counts[key] += 1
    return counts
