from __future__ import annotations

from datetime import timedelta

from callpulse.alerts.evaluate import FIRING, Figure
from callpulse.alerts.figures import collect
from callpulse.alerts.rules import Rule
from callpulse.analytics import Analytics
from callpulse.config import Settings
from callpulse.store import Store
from tests.alerts.conftest import NOW, Calls

WEEK = timedelta(days=7)


def test_per_number_mos_and_success(store: Store, add_calls: Calls) -> None:
    add_calls(20, to="+18005550001", mos=4.4)
    add_calls(20, to="+18005550002", mos=2.9)
    add_calls(5, to="+18005550002", status="failed", mos=None)
    rules = [
        Rule("mos", "mos_p50", per="to", min_calls=10, trigger=3.5, reset=3.8),
        Rule("answer", "success_rate", min_calls=10, trigger=0.9, reset=0.95),
    ]
    figures = collect(Analytics(store, Settings()), rules, {}, NOW)
    assert figures[("mos", "to=+18005550001")] == Figure(4.4, 20)
    assert figures[("mos", "to=+18005550002")] == Figure(2.9, 20)
    assert figures[("answer", "all")] == Figure(40 / 45, 45)


def test_volume_baseline_and_silent_line(store: Store, add_calls: Calls) -> None:
    for week in (1, 2):
        add_calls(30, to="+18005550001", ago=week * WEEK + timedelta(minutes=10))
    add_calls(6, to="+18005550001")
    rules = [
        Rule("vol", "volume", window=timedelta(minutes=15), baseline_weeks=2, min_calls=5),
        Rule("silent", "no_data", per="to", window=timedelta(minutes=15), baseline_weeks=2,
             min_calls=5, trigger=0, reset=1),
    ]  # fmt: skip
    analytics = Analytics(store, Settings())
    figures = collect(analytics, rules, {}, NOW)
    assert figures[("vol", "all")] == Figure(6.0, 6, 30.0)
    assert figures[("silent", "to=+18005550001")] == Figure(6.0, 6, 30.0)
    # An hour later the window is empty: zero calls against last weeks' 30 (none then either).
    later = collect(analytics, rules, {}, NOW + timedelta(hours=1))
    assert later[("vol", "all")] == Figure(0.0, 0, 0.0)


def test_a_firing_number_is_judged_even_without_calls(store: Store, add_calls: Calls) -> None:
    from callpulse.alerts.evaluate import AlertState

    rule = Rule("mos", "mos_p50", per="to", min_calls=1, trigger=3.5, reset=3.8)
    firing = AlertState("mos", "to=+18005550009", FIRING)
    figures = collect(Analytics(store, Settings()), [rule], {firing.key: firing}, NOW)
    assert figures == {("mos", "to=+18005550009"): Figure(None, 0)}
