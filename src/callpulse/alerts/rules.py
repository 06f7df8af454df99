"""Alert rules: the ``[[alerts]]`` tables of the TOML config, checked, and the shipped defaults."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from callpulse.errors import CallpulseError

METRICS = ("success_rate", "poor_rate", "mos_p50", "volume", "no_data")
# Metrics where a low value is bad; poor_rate is bad when high; volume and no_data compare counts.
LOW_IS_BAD = ("success_rate", "mos_p50")
SEVERITIES = ("info", "warning", "critical")
DIRECTIONS = ("drop", "spike", "both")
SCOPE_KEYS = ("account_sid", "to", "region")
_SPAN = re.compile(r"(\d+)([smhd])")
_SPAN_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KEYS = (
    "name", "metric", "scope", "per", "window", "min_calls", "trigger", "reset", "for",
    "repeat", "severity", "baseline_weeks", "factor", "reset_factor", "direction", "enabled",
)  # fmt: skip


# Keys that mean something for some metrics only: elsewhere they are mistakes, not ignored.
_ONLY = {
    "trigger": ("success_rate", "poor_rate", "mos_p50", "no_data"),
    "reset": ("success_rate", "poor_rate", "mos_p50", "no_data"),
    "baseline_weeks": ("volume", "no_data"),
    "factor": ("volume",),
    "reset_factor": ("volume",),
    "direction": ("volume",),
}


class RuleError(CallpulseError):
    """A rule as written cannot be used; the message names the rule, the key and the fix."""


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    scope: tuple[tuple[str, str], ...] = ()  # (key, value) pairs of account_sid, to, region
    per: str | None = None  # "to": one alert per called number
    window: timedelta = timedelta(minutes=15)
    min_calls: int = 10
    trigger: float = 0.0  # success_rate, poor_rate, mos_p50: the threshold; no_data: calls
    reset: float = 0.0
    for_: timedelta = timedelta(0)
    repeat: timedelta | None = None  # None: no re-notification while firing
    severity: str = "warning"
    baseline_weeks: int = 4  # volume and no_data: how many earlier weeks make the baseline
    factor: float = 2.0  # volume: fires below baseline / factor or above baseline * factor
    reset_factor: float = 1.5  # volume: resolves once back within these bounds
    direction: str = "both"  # volume: drop, spike or both
    enabled: bool = True

    @property
    def scope_label(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.scope) or "all"

    @property
    def uses_baseline(self) -> bool:
        return self.metric in ("volume", "no_data")


def parse_span(text: str) -> timedelta:
    """A span such as 90s, 15m, 2h or 1d; ValueError otherwise."""
    match = _SPAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected a span such as 90s, 15m, 2h or 1d, got {text!r}")
    return timedelta(seconds=int(match.group(1)) * _SPAN_UNITS[match.group(2)])


def format_span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _SPAN_UNITS[unit] == 0:
            return f"{seconds // _SPAN_UNITS[unit]}{unit}"
    return f"{seconds}s"


# Shipped enabled (README "Alerts" lists them); a rule of the same name replaces one, and
# ``alerts_defaults = false`` turns them all off.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("success-rate", "success_rate", min_calls=20, trigger=0.9, reset=0.95,
         for_=timedelta(minutes=5), repeat=timedelta(hours=1), severity="critical"),
    Rule("poor-calls", "poor_rate", per="to", min_calls=10, trigger=0.2, reset=0.1,
         for_=timedelta(minutes=5), repeat=timedelta(hours=1)),
    Rule("low-mos", "mos_p50", per="to", min_calls=10, trigger=3.5, reset=3.8,
         for_=timedelta(minutes=5), repeat=timedelta(hours=1)),
    Rule("volume", "volume", window=timedelta(hours=1), min_calls=20, factor=3.0,
         reset_factor=1.5, for_=timedelta(minutes=15)),
    Rule("no-calls", "no_data", window=timedelta(minutes=30), min_calls=10, trigger=0,
         reset=1, severity="critical"),
)  # fmt: skip


class _Table:
    """One ``[[alerts]]`` table being read: every error names the rule, the key and the fix."""

    def __init__(self, data: Mapping[str, Any], label: str) -> None:
        self.data, self.label = data, label

    def fail(self, key: str, message: str) -> RuleError:
        return RuleError(f"{self.label}: {key}: {message}")

    def number(self, key: str, default: float) -> float:
        raw = self.data.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise self.fail(key, f"expected a number such as 0.9, got {raw!r}")
        return float(raw)

    def whole(self, key: str, default: int, minimum: int) -> int:
        raw = self.data.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
            raise self.fail(key, f"expected a whole number of at least {minimum}, got {raw!r}")
        return raw

    def span(self, key: str, default: timedelta | None, *, zero: bool) -> timedelta | None:
        raw = self.data.get(key)
        if raw is None:
            return default
        try:
            span = parse_span(str(raw)) if isinstance(raw, str) else parse_span("")
        except ValueError:
            raise self.fail(
                key, f"expected a span such as 90s, 15m, 2h or 1d, got {raw!r}"
            ) from None
        if not span and not zero:
            raise self.fail(key, f"must be longer than 0, got {raw!r}")
        return span

    def choice(self, key: str, default: str | None, choices: Sequence[str]) -> str | None:
        raw = self.data.get(key, default)
        if raw is not None and raw not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {raw!r}")
        return None if raw is None else str(raw)


def _scope(table: _Table) -> tuple[tuple[str, str], ...]:
    from callpulse.analytics.errors import QueryError
    from callpulse.analytics.filters import make_filters

    raw = table.data.get("scope", "all")
    if raw == "all":
        return ()
    if not isinstance(raw, Mapping) or not raw or set(raw) - set(SCOPE_KEYS):
        raise table.fail(
            "scope",
            f'expected "all" or a table of {", ".join(SCOPE_KEYS)} such as '
            f'{{ to = "+18005559876" }}, got {raw!r}',
        )
    try:
        filters = make_filters(**{key: str(value) for key, value in raw.items()})
    except QueryError as exc:
        raise table.fail(f"scope.{exc.parameter}", str(exc)) from None
    return tuple((key, str(getattr(filters, key))) for key in SCOPE_KEYS if key in raw)


def parse_rule(data: Mapping[str, Any], index: int, base: Rule | None = None) -> Rule:
    """One ``[[alerts]]`` table (the ``index``-th, from 1); ``base`` is the default it replaces."""
    name = data.get("name")
    table = _Table(data, f"alert rule {name!r}" if name else f"alert rule #{index}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise table.fail("name", "required: 1-64 letters, digits, '-', '_' or '.'")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise table.fail(unknown[0], f"unknown key (known: {', '.join(_KEYS)})")
    metric = table.choice("metric", base.metric if base else None, METRICS)
    if metric is None:
        raise table.fail("metric", f"required: one of {', '.join(METRICS)}")
    for key in sorted(set(data) & _ONLY.keys()):
        if metric not in _ONLY[key]:
            raise table.fail(key, f"not for {metric} rules (only {', '.join(_ONLY[key])})")
    if base is not None and base.metric != metric:
        base = None  # a rule of a default's name with another metric starts from nothing
    start = base or Rule(name, metric)
    enabled = data.get("enabled", start.enabled)
    if not isinstance(enabled, bool):
        raise table.fail("enabled", f"expected true or false, got {enabled!r}")
    rule = replace(
        start,
        name=name,
        metric=metric,
        scope=_scope(table) if "scope" in data else start.scope,
        per=table.choice("per", start.per, ("to",)),
        window=table.span("window", start.window, zero=False) or start.window,
        min_calls=table.whole("min_calls", start.min_calls, 0),
        for_=table.span("for", start.for_, zero=True) or timedelta(0),
        repeat=table.span("repeat", start.repeat, zero=True) or None,  # "0s": never again
        severity=table.choice("severity", start.severity, SEVERITIES) or start.severity,
        baseline_weeks=table.whole("baseline_weeks", start.baseline_weeks, 1),
        direction=table.choice("direction", start.direction, DIRECTIONS) or start.direction,
        enabled=enabled,
    )
    if metric == "volume":
        factor = table.number("factor", start.factor)
        reset_factor = table.number("reset_factor", min(start.reset_factor, factor))
        if factor <= 1:
            raise table.fail(
                "factor", f"must be more than 1 (2 means half or double), got {factor}"
            )
        if not 1 <= reset_factor <= factor:
            raise table.fail(
                "reset_factor", f"must be between 1 and factor ({factor}), got {reset_factor}"
            )
        return replace(rule, factor=factor, reset_factor=reset_factor)
    if base is None and "trigger" not in data and metric != "no_data":
        raise table.fail("trigger", "required for this metric (the threshold that fires)")
    trigger = table.number("trigger", start.trigger)
    # Without a reset it resolves at the trigger itself (no_data: at one call more).
    unset_reset = trigger + 1 if metric == "no_data" else trigger
    reset = table.number("reset", start.reset if base else unset_reset)
    _check_thresholds(table, metric, trigger, reset)
    return replace(rule, trigger=trigger, reset=reset)


def _check_thresholds(table: _Table, metric: str, trigger: float, reset: float) -> None:
    if metric in ("success_rate", "poor_rate"):
        for key, value in (("trigger", trigger), ("reset", reset)):
            if not 0 <= value <= 1:
                raise table.fail(key, f"a rate is between 0 and 1, got {value}")
    if metric == "mos_p50":
        for key, value in (("trigger", trigger), ("reset", reset)):
            if not 1 <= value <= 5:
                raise table.fail(key, f"a MOS is between 1 and 5, got {value}")
    if metric in LOW_IS_BAD and reset < trigger:
        raise table.fail(
            "reset",
            f"must be at least trigger ({trigger}): the rule resolves above it, got {reset}",
        )
    if metric == "poor_rate" and reset > trigger:
        raise table.fail(
            "reset", f"must be at most trigger ({trigger}): the rule resolves below it, got {reset}"
        )
    if metric == "no_data" and (trigger < 0 or reset <= trigger):
        raise table.fail(
            "reset", f"calls that resolve must be more than trigger ({trigger}), got {reset}"
        )


def parse_rules(tables: object, defaults: bool = True) -> tuple[Rule, ...]:
    """The rules in force: the defaults (unless ``defaults`` is False), replaced or extended by
    the ``[[alerts]]`` tables; disabled rules are kept (listed) but never evaluated."""
    if tables is None:
        tables = []
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise RuleError(f"alerts: expected [[alerts]] tables, got {tables!r}")
    rules = {rule.name: rule for rule in DEFAULT_RULES} if defaults else {}
    seen: set[str] = set()
    for index, data in enumerate(tables, 1):
        rule = parse_rule(data, index, rules.get(str(data.get("name"))))
        if rule.name in seen:
            raise RuleError(f"alert rule {rule.name!r}: name: used twice; give each rule its own")
        seen.add(rule.name)
        rules[rule.name] = rule
    return tuple(rules.values())
