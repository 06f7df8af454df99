"""One evaluation round against the store: figures, the evaluator, and what it stores.

The figures are read first, outside any lock, so the round's write transaction is short; the
states are then read again inside it, so two processes racing one round store each transition
once (the second sees the first's states, or on PostgreSQL skips the round)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from callpulse.alerts import notify
from callpulse.alerts.evaluate import Transition, evaluate
from callpulse.alerts.figures import collect
from callpulse.alerts.rules import Rule
from callpulse.analytics import Analytics
from callpulse.store.protocols import AlertTables

RETENTION = timedelta(days=90)  # of alert history and notifications: the tables stay small


@dataclass
class RoundReport:
    ran: bool  # False: another process held this round
    transitions: list[Transition] = field(default_factory=list)
    notifications: int = 0  # queued for the webhook (silenced rules queue none)


def run_round(
    store: AlertTables,
    analytics: Analytics,
    rules: Sequence[Rule],
    now: datetime,
    dashboard_url: str = "",
    *,
    queue: bool = True,
) -> RoundReport:
    """``queue``: put notifications in the outbox (off without a webhook to send them to, so
    configuring one later does not flood it with old news)."""
    with store.alert_book(read_only=True) as book:
        assert book is not None
        seen = book.states()
    figures = collect(analytics, rules, seen, now)
    by_name = {rule.name: rule for rule in rules}
    with store.alert_book(evaluation_round=True) as book:
        if book is None:
            return RoundReport(ran=False)
        book.prune(now, RETENTION)
        before = book.states()
        result = evaluate(rules, figures, before, now)
        book.save_states(result.states, before)
        silenced = {s.rule for s in book.silences(now)}
        report = RoundReport(ran=True, transitions=result.transitions)
        for transition in result.transitions:
            history_id = book.add_history(transition)
            if queue and transition.notify and transition.rule not in silenced:
                body = notify.payload(transition, by_name[transition.rule], dashboard_url)
                book.enqueue(history_id, json.dumps(body, separators=(",", ":")), now)
                report.notifications += 1
    return report
