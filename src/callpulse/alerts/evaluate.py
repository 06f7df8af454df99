"""One evaluation round as a pure function: rules, window figures, previous states, now →
new states and the transitions between them (ok → pending → firing → resolved). No I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from callpulse.alerts.rules import LOW_IS_BAD, Rule

OK, PENDING, FIRING, RESOLVED = "ok", "pending", "firing", "resolved"
STATES = (OK, PENDING, FIRING, RESOLVED)
NOTIFIED = (FIRING, RESOLVED)  # transitions into these are sent to the webhook

Key = tuple[str, str]  # (rule name, scope)


@dataclass(frozen=True)
class Figure:
    """What the window shows for one scope. ``calls`` is what ``min_calls`` is judged on: the
    calls with a status (success_rate), with a MOS (poor_rate, mos_p50) or all (volume,
    no_data); ``baseline`` is the mean calls of the same window in earlier weeks."""

    value: float | None
    calls: int
    baseline: float | None = None


@dataclass(frozen=True)
class AlertState:
    rule: str
    scope: str
    state: str = OK
    value: float | None = None
    threshold: float | None = None
    pending_since: datetime | None = None
    started_at: datetime | None = None  # when it started firing
    resolved_at: datetime | None = None
    notified_at: datetime | None = None  # last notification (firing or a repeat)
    changed_at: datetime | None = None

    @property
    def key(self) -> Key:
        return (self.rule, self.scope)


@dataclass(frozen=True)
class Transition:
    """A change of state, or a repeat (firing → firing) of a long-firing alert."""

    rule: str
    scope: str
    from_state: str
    to_state: str
    at: datetime
    value: float | None
    threshold: float | None
    started_at: datetime | None
    severity: str

    @property
    def notify(self) -> bool:
        return self.to_state in NOTIFIED


class Verdict(enum.Enum):
    BAD = "bad"  # the trigger condition holds
    CLEAR = "clear"  # past the reset threshold: a firing alert resolves
    BETWEEN = "between"  # between the thresholds: nothing starts, nothing resolves
    UNKNOWN = "unknown"  # too few calls to judge


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    value: float | None
    threshold: float | None  # the bound crossed (or to be crossed to resolve)


def judge(rule: Rule, figure: Figure) -> Judgement:
    if rule.uses_baseline:
        if figure.baseline is None or figure.baseline < max(rule.min_calls, 1e-9):
            return Judgement(Verdict.UNKNOWN, None, None)  # no usual traffic to compare with
        if rule.metric == "no_data":
            calls = float(figure.calls)  # an empty window is zero calls, not "unknown"
            if calls <= rule.trigger:
                return Judgement(Verdict.BAD, calls, rule.trigger)
            return Judgement(Verdict.CLEAR if calls >= rule.reset else Verdict.BETWEEN,
                             calls, rule.reset)  # fmt: skip
        ratio = figure.calls / figure.baseline
        drop = rule.direction in ("drop", "both") and ratio <= 1 / rule.factor
        spike = rule.direction in ("spike", "both") and ratio >= rule.factor
        if drop or spike:
            return Judgement(Verdict.BAD, ratio, 1 / rule.factor if drop else rule.factor)
        back = 1 / rule.reset_factor < ratio < rule.reset_factor
        bound = rule.reset_factor if ratio >= 1 else 1 / rule.reset_factor
        return Judgement(Verdict.CLEAR if back else Verdict.BETWEEN, ratio, bound)
    if figure.value is None or figure.calls < max(rule.min_calls, 1):
        return Judgement(Verdict.UNKNOWN, figure.value, None)
    value = figure.value
    if rule.metric in LOW_IS_BAD:
        bad, clear = value < rule.trigger, value > rule.reset
    else:
        bad, clear = value > rule.trigger, value < rule.reset
    if bad:
        return Judgement(Verdict.BAD, value, rule.trigger)
    return Judgement(Verdict.CLEAR if clear else Verdict.BETWEEN, value, rule.reset)


def step(rule: Rule, previous: AlertState, figure: Figure, now: datetime) -> AlertState:
    """The state after one round for one scope."""
    j = judge(rule, figure)
    threshold = previous.threshold if j.threshold is None else j.threshold
    current = replace(previous, value=j.value, threshold=threshold)
    if previous.state in (OK, RESOLVED):
        if j.verdict is not Verdict.BAD:
            return current
        if rule.for_:
            return replace(current, state=PENDING, pending_since=now, changed_at=now)
        return _fire(current, now)
    if previous.state == PENDING:
        if j.verdict is not Verdict.BAD:  # the condition must hold all through `for`
            return replace(current, state=OK, pending_since=None, changed_at=now)
        since = previous.pending_since or now
        return _fire(current, now) if now - since >= rule.for_ else current
    # firing
    if j.verdict is Verdict.CLEAR:
        return replace(current, state=RESOLVED, pending_since=None, resolved_at=now,
                       changed_at=now)  # fmt: skip
    due = previous.notified_at is None or (
        rule.repeat is not None and now - previous.notified_at >= rule.repeat
    )
    return replace(current, notified_at=now) if due else current


def _fire(state: AlertState, now: datetime) -> AlertState:
    return replace(state, state=FIRING, started_at=now, resolved_at=None, notified_at=now,
                   changed_at=now)  # fmt: skip


@dataclass(frozen=True)
class Round:
    states: dict[Key, AlertState]  # every scope evaluated, changed or not
    transitions: list[Transition]


def evaluate(
    rules: Sequence[Rule],
    figures: Mapping[Key, Figure],
    previous: Mapping[Key, AlertState],
    now: datetime,
) -> Round:
    """Scopes without a figure keep their state; disabled rules are not evaluated."""
    by_name = {rule.name: rule for rule in rules if rule.enabled}
    states: dict[Key, AlertState] = {}
    transitions: list[Transition] = []
    for key, figure in figures.items():
        rule = by_name.get(key[0])
        if rule is None:
            continue
        before = previous.get(key) or AlertState(rule=key[0], scope=key[1])
        after = step(rule, before, figure, now)
        states[key] = after
        repeated = after.state == FIRING == before.state and after.notified_at != before.notified_at
        if after.state != before.state or repeated:
            transitions.append(
                Transition(
                    rule=rule.name,
                    scope=key[1],
                    from_state=before.state,
                    to_state=after.state,
                    at=now,
                    value=after.value,
                    threshold=after.threshold,
                    started_at=after.started_at,
                    severity=rule.severity,
                )
            )
    return Round(states, transitions)
