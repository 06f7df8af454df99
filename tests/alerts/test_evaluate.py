from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callpulse.alerts.evaluate import (
    FIRING,
    OK,
    PENDING,
    RESOLVED,
    AlertState,
    Figure,
    Key,
    evaluate,
)
from callpulse.alerts.rules import Rule

T0 = datetime(2024, 4, 4, 18, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SUCCESS = Rule("answer", "success_rate", min_calls=10, trigger=0.9, reset=0.95)
KEY: Key = ("answer", "all")


def run(
    rule: Rule, figures: Sequence[Figure | None], key: Key | None = None
) -> list[tuple[str, str]]:
    """One round a minute; the (from, to) of every transition in order."""
    key = key or (rule.name, "all")
    states: dict[Key, AlertState] = {}
    seen = []
    for minute, figure in enumerate(figures):
        now = T0 + minute * MINUTE
        result = evaluate([rule], {} if figure is None else {key: figure}, states, now)
        states.update(result.states)
        seen += [(t.from_state, t.to_state) for t in result.transitions]
    return seen


def rate(value: float, calls: int = 50) -> Figure:
    return Figure(value, calls)


@pytest.mark.parametrize(
    ("rule", "figures", "expected"),
    [
        # Below trigger fires at once without `for`, above reset resolves.
        (SUCCESS, [rate(0.97), rate(0.85), rate(0.97)], [(OK, FIRING), (FIRING, RESOLVED)]),
        # Hysteresis: between 0.9 and 0.95 neither fires nor resolves.
        (SUCCESS, [rate(0.85), rate(0.92), rate(0.93), rate(0.91)], [(OK, FIRING)]),
        (SUCCESS, [rate(0.92), rate(0.93), rate(0.94)], []),
        # Flapping around the trigger: one firing, no resolution until above reset.
        (
            SUCCESS,
            [rate(0.89), rate(0.91), rate(0.89), rate(0.91), rate(0.96)],
            [(OK, FIRING), (FIRING, RESOLVED)],
        ),
        # min_calls: a terrible rate over too few calls is no evidence.
        (SUCCESS, [rate(0.1, calls=9), rate(0.1, calls=9)], []),
        (SUCCESS, [rate(0.1, calls=10)], [(OK, FIRING)]),
        # Too few calls while firing: stays firing (it cannot say the line recovered).
        (SUCCESS, [rate(0.5), rate(1.0, calls=2), rate(0.97)], [(OK, FIRING), (FIRING, RESOLVED)]),
        # for: pending first, firing once it held that long, back to ok if it lapses.
        (
            replace(SUCCESS, for_=2 * MINUTE),
            [rate(0.8), rate(0.8), rate(0.8), rate(0.97)],
            [(OK, PENDING), (PENDING, FIRING), (FIRING, RESOLVED)],
        ),
        (
            replace(SUCCESS, for_=2 * MINUTE),
            [rate(0.8), rate(0.8), rate(0.92), rate(0.8)],
            [(OK, PENDING), (PENDING, OK), (OK, PENDING)],
        ),
        # Fires again after resolving.
        (
            SUCCESS,
            [rate(0.8), rate(0.99), rate(0.8)],
            [(OK, FIRING), (FIRING, RESOLVED), (RESOLVED, FIRING)],
        ),
        # poor_rate is bad when high.
        (
            Rule("poor", "poor_rate", min_calls=5, trigger=0.2, reset=0.1),
            [rate(0.05), rate(0.28), rate(0.15), rate(0.05)],
            [(OK, FIRING), (FIRING, RESOLVED)],
        ),
        (
            Rule("mos", "mos_p50", min_calls=5, trigger=3.5, reset=3.8),
            [rate(4.2), rate(3.1), rate(3.6), rate(3.9)],
            [(OK, FIRING), (FIRING, RESOLVED)],
        ),
        # No figure: the scope keeps its state.
        (SUCCESS, [rate(0.5), None, None, rate(0.97)], [(OK, FIRING), (FIRING, RESOLVED)]),
    ],
)
def test_transitions(
    rule: Rule, figures: list[Figure | None], expected: list[tuple[str, str]]
) -> None:
    assert run(rule, figures) == expected


def test_repeat_renotifies_while_firing() -> None:
    rule = replace(SUCCESS, repeat=3 * MINUTE)
    assert run(rule, [rate(0.5)] * 8 + [rate(0.99)]) == [
        (OK, FIRING), (FIRING, FIRING), (FIRING, FIRING), (FIRING, RESOLVED),
    ]  # fmt: skip
    assert run(SUCCESS, [rate(0.5)] * 8) == [(OK, FIRING)]


VOLUME = Rule("vol", "volume", min_calls=20, factor=2.0, reset_factor=1.5)


def volume(calls: int, baseline: float | None = 100) -> Figure:
    return Figure(float(calls), calls, baseline)


@pytest.mark.parametrize(
    ("rule", "figures", "expected"),
    [
        # A drop to under half of the same hour of earlier weeks fires; back within 1.5x resolves.
        (
            VOLUME,
            [volume(90), volume(40), volume(60), volume(70)],
            [(OK, FIRING), (FIRING, RESOLVED)],
        ),
        (VOLUME, [volume(210), volume(120)], [(OK, FIRING), (FIRING, RESOLVED)]),
        (replace(VOLUME, direction="drop"), [volume(300), volume(10)], [(OK, FIRING)]),
        (replace(VOLUME, direction="spike"), [volume(10), volume(300)], [(OK, FIRING)]),
        # A baseline under min_calls is no baseline; none at all neither.
        (VOLUME, [volume(0, baseline=10), volume(0, baseline=None)], []),
        # An empty window is zero calls: a drop.
        (VOLUME, [volume(0)], [(OK, FIRING)]),
    ],
)
def test_volume_against_baseline(
    rule: Rule, figures: list[Figure], expected: list[tuple[str, str]]
) -> None:
    assert run(rule, figures, ("vol", "all")) == expected


NO_DATA = Rule("silent", "no_data", min_calls=5, trigger=0, reset=1)


def test_no_data_fires_on_an_empty_window_of_a_busy_scope() -> None:
    key = ("silent", "to=+18005559876")
    figures = [volume(30, 40), volume(0, 40), volume(0, 40), volume(3, 40)]
    assert run(NO_DATA, figures, key) == [(OK, FIRING), (FIRING, RESOLVED)]
    # A scope that normally has no calls is not "silent".
    assert run(NO_DATA, [volume(0, 2), volume(0, 0)], key) == []


def test_per_number_states_are_independent() -> None:
    rule = replace(SUCCESS, per="to")
    a, b = ("answer", "to=+18005550001"), ("answer", "to=+18005550002")
    first = evaluate([rule], {a: rate(0.5), b: rate(0.99)}, {}, T0)
    assert [(t.scope, t.to_state) for t in first.transitions] == [("to=+18005550001", FIRING)]
    second = evaluate([rule], {a: rate(0.5), b: rate(0.5)}, first.states, T0 + MINUTE)
    assert [(t.scope, t.to_state) for t in second.transitions] == [("to=+18005550002", FIRING)]
    assert second.states[a].started_at == T0


def test_disabled_rules_and_unknown_rules_are_skipped() -> None:
    off = replace(SUCCESS, enabled=False)
    assert evaluate([off], {KEY: rate(0.1)}, {}, T0).transitions == []
    assert evaluate([], {KEY: rate(0.1)}, {}, T0).states == {}


def test_transition_fields() -> None:
    (t,) = evaluate([SUCCESS], {KEY: rate(0.8)}, {}, T0).transitions
    assert (t.rule, t.scope, t.value, t.threshold, t.started_at, t.notify) == (
        "answer", "all", 0.8, 0.9, T0, True,
    )  # fmt: skip
    states = evaluate([SUCCESS], {KEY: rate(0.8)}, {}, T0).states
    (r,) = evaluate([SUCCESS], {KEY: rate(0.99)}, states, T0 + MINUTE).transitions
    assert (r.to_state, r.value, r.threshold, r.started_at) == (RESOLVED, 0.99, 0.95, T0)


@given(
    values=st.lists(st.floats(0, 1), min_size=1, max_size=40),
    for_minutes=st.integers(0, 5),
    repeat=st.sampled_from([None, 1, 4]),
)
def test_properties(values: list[float], for_minutes: int, repeat: int | None) -> None:
    """For any sequence: states alternate sensibly, firings and resolutions alternate, and a
    firing is preceded by `for` minutes of values all below the trigger."""
    rule = replace(
        SUCCESS, for_=for_minutes * MINUTE, repeat=None if repeat is None else repeat * MINUTE
    )
    states: dict[Key, AlertState] = {}
    firing = False
    for minute, value in enumerate(values):
        now = T0 + minute * MINUTE
        result = evaluate([rule], {KEY: rate(value)}, states, now)
        states.update(result.states)
        for t in result.transitions:
            assert t.from_state != t.to_state or t.to_state == FIRING
            if t.to_state == FIRING and t.from_state != FIRING:
                assert not firing
                firing = True
                held = values[max(0, minute - for_minutes) : minute + 1]
                assert all(v < rule.trigger for v in held)
                assert minute >= for_minutes
            if t.from_state == t.to_state == FIRING:
                assert repeat is not None
            if t.to_state == RESOLVED:
                assert firing and value > rule.reset
                firing = False
        assert (states[KEY].state == FIRING) == firing
