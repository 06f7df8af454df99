"""Rounds against real stores: each transition stored once, no re-notification on restart, and
two racing rounds (threads with their own connections) on one database."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from callpulse.alerts.engine import RoundReport, run_round
from callpulse.alerts.evaluate import FIRING, OK, PENDING, RESOLVED
from callpulse.alerts.rules import Rule
from callpulse.analytics import Analytics
from callpulse.config import Settings
from callpulse.store import Store, open_store
from tests.alerts.conftest import NOW, Calls, writer_of
from tests.support import postgres_schema

MOS = Rule("low-mos", "mos_p50", per="to", min_calls=5, trigger=3.5, reset=3.8,
           for_=timedelta(minutes=2))  # fmt: skip
BAD = "to=+18005550002"


def _history(store: Store) -> list[tuple[str, str, str, str]]:
    with store.alert_book() as book:
        assert book is not None
        return [(h.transition.rule, h.transition.scope, h.transition.from_state,
                 h.transition.to_state) for h in reversed(book.history(100))]  # fmt: skip


def _outbox(store: Store) -> list[dict[str, object]]:
    with store.alert_book() as book:
        assert book is not None
        return [json.loads(item.body) for item in reversed(book.outbox())]


def test_mos_drop_on_one_number_fires_once_and_resolves(store: Store, add_calls: Calls) -> None:
    add_calls(10, to="+18005550001", mos=4.3)
    add_calls(10, to="+18005550002", mos=2.8)
    analytics = Analytics(store, Settings())

    def at(minutes: int) -> RoundReport:
        return run_round(store, analytics, [MOS], NOW + timedelta(minutes=minutes), "http://d/")

    assert [t.to_state for t in at(0).transitions] == [PENDING]
    assert at(1).transitions == []
    fired = at(2)
    assert [(t.scope, t.to_state) for t in fired.transitions] == [(BAD, FIRING)]
    assert fired.notifications == 1
    assert at(2).transitions == at(3).transitions == []  # the same round again stores nothing
    # Good calls on the number: its median climbs above the reset line.
    add_calls(30, to="+18005550002", mos=4.2, ago=timedelta(minutes=-3))
    assert [t.to_state for t in at(4).transitions] == [RESOLVED]
    assert _history(store) == [
        ("low-mos", BAD, OK, PENDING), ("low-mos", BAD, PENDING, FIRING),
        ("low-mos", BAD, FIRING, RESOLVED),
    ]  # fmt: skip
    bodies = _outbox(store)
    assert [(b["state"], b["scope"], b["rule"]) for b in bodies] == [
        (FIRING, BAD, "low-mos"), (RESOLVED, BAD, "low-mos"),
    ]  # fmt: skip
    assert bodies[0]["value"] == 2.8 and bodies[0]["threshold"] == 3.5
    assert bodies[0]["window"] == "15m" and bodies[0]["dashboard_url"] == "http://d/"
    assert "low-mos" in str(bodies[0]["text"]) and "FIRING" in str(bodies[0]["text"])


def test_a_restart_does_not_renotify(database_url: str, add_calls: Calls, store: Store) -> None:
    rule = Rule("low-mos", "mos_p50", per="to", min_calls=5, trigger=3.5, reset=3.8)
    add_calls(10, to="+18005550002", mos=2.8)
    run_round(store, Analytics(store, Settings()), [rule], NOW)
    reopened = open_store(Settings(database_url=database_url))
    try:
        later = run_round(
            reopened, Analytics(reopened, Settings()), [rule], NOW + timedelta(minutes=1)
        )
        assert later.transitions == [] and later.notifications == 0
        assert len(_outbox(reopened)) == 1
    finally:
        reopened.close()


def test_silenced_rules_keep_history_but_queue_nothing(store: Store, add_calls: Calls) -> None:
    rule = Rule("low-mos", "mos_p50", per="to", min_calls=5, trigger=3.5, reset=3.8)
    add_calls(10, to="+18005550002", mos=2.8)
    with store.alert_book() as book:
        assert book is not None
        book.silence("low-mos", NOW + timedelta(hours=2), NOW)
    report = run_round(store, Analytics(store, Settings()), [rule], NOW)
    assert [t.to_state for t in report.transitions] == [FIRING]
    assert report.notifications == 0 and _outbox(store) == []
    with store.alert_book() as book:
        assert book is not None
        assert [s.rule for s in book.silences(NOW + timedelta(hours=1))] == ["low-mos"]
        assert book.silences(NOW + timedelta(hours=2)) == []  # expired
        book.prune(NOW + timedelta(hours=2), timedelta(days=90))
        assert not book.unsilence("low-mos")  # and gone


def test_history_and_notifications_are_kept_for_a_while(store: Store, add_calls: Calls) -> None:
    rule = Rule("low-mos", "mos_p50", per="to", min_calls=5, trigger=3.5, reset=3.8)
    add_calls(10, to="+18005550002", mos=2.8)
    run_round(store, Analytics(store, Settings()), [rule], NOW)
    assert len(_history(store)) == len(_outbox(store)) == 1
    with store.alert_book() as book:
        assert book is not None
        book.prune(NOW + timedelta(days=89), timedelta(days=90))
    assert len(_history(store)) == len(_outbox(store)) == 1
    with store.alert_book() as book:
        assert book is not None
        book.prune(NOW + timedelta(days=91), timedelta(days=90))
        assert book.states()[("low-mos", BAD)].state == FIRING  # the state itself stays
    assert _history(store) == _outbox(store) == []


def test_volume_drop_and_silent_line_against_earlier_weeks(store: Store, add_calls: Calls) -> None:
    rules = [
        Rule("volume", "volume", window=timedelta(minutes=15), min_calls=10, factor=2.0,
             baseline_weeks=2, direction="drop"),
        Rule("silent", "no_data", per="to", window=timedelta(minutes=15), min_calls=10,
             baseline_weeks=2, trigger=0, reset=1),
    ]  # fmt: skip
    week = timedelta(days=7)
    for n in (1, 2):  # the same quarter hour of the two weeks before: 20 calls on each number
        add_calls(20, to="+18005550001", ago=n * week + timedelta(minutes=10))
        add_calls(20, to="+18005550002", ago=n * week + timedelta(minutes=10))
    add_calls(12, to="+18005550001")  # this week: 12 calls on one number, none on the other
    report = run_round(store, Analytics(store, Settings()), rules, NOW)
    assert sorted((t.rule, t.scope, t.to_state) for t in report.transitions) == [
        ("silent", "to=+18005550002", FIRING),
        ("volume", "all", FIRING),  # 12 calls against the usual 40: under half
    ]
    (volume,) = [t for t in report.transitions if t.rule == "volume"]
    assert volume.value == 12 / 40 and volume.threshold == 0.5
    add_calls(30, to="+18005550002", ago=timedelta(minutes=-1))
    later = run_round(store, Analytics(store, Settings()), rules, NOW + timedelta(minutes=2))
    assert sorted((t.rule, t.scope, t.to_state) for t in later.transitions) == [
        ("silent", "to=+18005550002", RESOLVED), ("volume", "all", RESOLVED),
    ]  # fmt: skip


def test_outbox_claims_are_exclusive(store: Store) -> None:
    with store.alert_book() as book:
        assert book is not None
        book.enqueue(1, "{}", NOW)
        (item,) = book.due(NOW)
        assert book.claim(item.id, NOW, NOW + timedelta(seconds=60))
        assert not book.claim(item.id, NOW, NOW + timedelta(seconds=60))
        assert book.due(NOW) == []
        book.failed(item.id, NOW + timedelta(seconds=10), "webhook: answered 500")
        assert book.due(NOW + timedelta(seconds=5)) == []
        (again,) = book.due(NOW + timedelta(seconds=10))
        assert (again.attempts, again.last_error) == (1, "webhook: answered 500")
        book.delivered(item.id, NOW + timedelta(seconds=10))
        assert book.due(NOW + timedelta(days=1)) == []


def _race(url: str, add_calls: Calls) -> list[tuple[str, str, str, str]]:
    rules = [
        Rule("low-mos", "mos_p50", per="to", min_calls=5, trigger=3.5, reset=3.8),
        Rule("answer", "success_rate", min_calls=5, trigger=0.9, reset=0.95),
    ]
    add_calls(10, to="+18005550002", mos=2.8)
    add_calls(10, to="+18005550003", status="failed", mos=None)
    stores = [open_store(Settings(database_url=url)) for _ in range(2)]
    barrier = threading.Barrier(2)
    reports: list[RoundReport] = []

    def evaluate(store: Store) -> None:
        analytics = Analytics(store, Settings())
        barrier.wait()
        reports.append(run_round(store, analytics, rules, NOW))

    try:
        threads = [threading.Thread(target=evaluate, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(r.notifications for r in reports) == 2
        assert len(_outbox(stores[0])) == 2
        return _history(stores[0])
    finally:
        for store in stores:
            store.close()


def test_two_racing_rounds_store_each_transition_once(
    database_url: str, store: Store, add_calls: Calls
) -> None:
    assert sorted(_race(database_url, add_calls)) == [
        ("answer", "all", OK, FIRING), ("low-mos", BAD, OK, FIRING),
    ]  # fmt: skip


def test_postgres_round_is_one_at_a_time() -> None:
    """While one process holds the round, another (its own connection) skips it."""
    with postgres_schema() as url:
        first, second = (open_store(Settings(database_url=url)) for _ in range(2))
        try:
            first.upgrade()
            with first.alert_book(evaluation_round=True) as held:
                assert held is not None
                with second.alert_book(evaluation_round=True) as other:
                    assert other is None
                assert run_round(second, Analytics(second, Settings()), [MOS], NOW).ran is False
            with second.alert_book(evaluation_round=True) as free:
                assert free is not None  # released with the transaction
        finally:
            first.close()
            second.close()


def test_racing_rounds_on_postgres_repeatedly() -> None:
    for _ in range(5):
        with postgres_schema() as url:
            fresh = open_store(Settings(database_url=url))
            fresh.upgrade()
            try:
                history = _race(url, writer_of(fresh))
            finally:
                fresh.close()
        assert sorted(history) == [("answer", "all", OK, FIRING), ("low-mos", BAD, OK, FIRING)]
