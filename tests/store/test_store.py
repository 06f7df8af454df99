"""The Store contract, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from callpulse.callback import parse_callback
from callpulse.config import Settings
from callpulse.store import Store, open_store
from callpulse.store.base import CallWrite, QuarantineWrite, SaveResult
from callpulse.store.errors import StoreRefused
from callpulse.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from callpulse.store.records import CallSelection
from tests.support import callback_fields, sql_rows

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def call(**overrides: str) -> CallWrite:
    return CallWrite(parse_callback(callback_fields(**overrides)), NOW)


def junk(n: int, at: datetime = NOW) -> QuarantineWrite:
    return QuarantineWrite(
        at, "invalid", {"From": "bad"}, "POST", "http://h/cb", {"content-type": "x"},
        f"body{n}".encode(), 5,
    )  # fmt: skip


def test_migrations_are_recorded_and_idempotent(database_url: str) -> None:
    store = open_store(Settings(database_url=database_url))
    migrations = SQLITE_MIGRATIONS if database_url.startswith("sqlite") else POSTGRES_MIGRATIONS
    names = [m.name for m in migrations]
    assert names[:3] == [
        "0001_calls_history_quarantine",
        "0002_rollups_regions_repeats",
        "0003_data_problems",
    ]
    assert [(s.name, s.applied_at) for s in store.migration_status()] == [(n, None) for n in names]
    assert store.upgrade() == names
    assert store.upgrade() == []
    assert all(state.applied_at is not None for state in store.migration_status())
    store.close()


def test_insert_then_retry_is_stored_once(store: Store) -> None:
    write = call()
    assert store.write_batch([write, write]) == [SaveResult.INSERTED, SaveResult.DUPLICATE]
    assert store.write_batch([write]) == [SaveResult.DUPLICATE]
    assert store.count_calls() == 1
    stored = store.get_call(write.record.account_sid, write.record.call_sid)
    assert stored is not None
    assert stored.record == write.record
    assert (stored.received_at, stored.source, stored.version) == (NOW, "callback", 1)
    assert store.get_call(write.record.account_sid, "no-such-call") is None


def test_changed_content_updates_and_keeps_history(store: Store) -> None:
    first = call(CallStatus="failed", CallDuration="0")
    sid = first.record.call_sid
    second = CallWrite(
        parse_callback(callback_fields(CallSid=sid, CallDuration="30")),
        NOW + timedelta(seconds=5),
    )
    assert store.write_batch([first]) == [SaveResult.INSERTED]
    assert store.write_batch([second]) == [SaveResult.UPDATED]
    # a late retry of the first version is a duplicate, not a flip back
    assert store.write_batch([first]) == [SaveResult.DUPLICATE]
    current = store.get_call(first.record.account_sid, sid)
    assert current is not None and current.record == second.record and current.version == 2
    (old,) = store.call_history(first.record.account_sid, sid)
    assert old.record == first.record and old.version == 1
    assert store.count_calls() == 1


def test_update_within_one_batch_keeps_history(store: Store) -> None:
    first = call(CallStatus="failed", CallDuration="0")
    sid = first.record.call_sid
    second = CallWrite(parse_callback(callback_fields(CallSid=sid, CallDuration="7")), NOW)
    other = call()
    assert store.write_batch([first, other, second, first, other]) == [
        SaveResult.INSERTED,
        SaveResult.INSERTED,
        SaveResult.UPDATED,
        SaveResult.DUPLICATE,
        SaveResult.DUPLICATE,
    ]
    current = store.get_call(first.record.account_sid, sid)
    assert current is not None and current.record == second.record and current.version == 2
    assert [h.record for h in store.call_history(first.record.account_sid, sid)] == [first.record]
    assert store.count_calls() == 2


def test_update_that_moves_the_start_time_across_months(store: Store) -> None:
    first = call(Timestamp="Sat, 30 Nov 2024 23:59:59 +0000")
    sid = first.record.call_sid
    moved = CallWrite(
        parse_callback(callback_fields(CallSid=sid, Timestamp="Sun, 01 Dec 2024 00:00:01 +0000")),
        NOW,
    )
    assert store.write_batch([first]) == [SaveResult.INSERTED]
    assert store.write_batch([moved]) == [SaveResult.UPDATED]
    current = store.get_call(first.record.account_sid, sid)
    assert current is not None and current.record.started_at.month == 12
    assert store.count_calls() == 1


def test_same_call_sid_in_other_account_is_another_call(store: Store) -> None:
    write = call()
    other = CallWrite(
        parse_callback(callback_fields(CallSid=write.record.call_sid, AccountSid="other")), NOW
    )
    assert store.write_batch([write, other]) == [SaveResult.INSERTED, SaveResult.INSERTED]
    assert store.count_calls() == 2


def test_stored_values_keep_their_types(store: Store) -> None:
    write = call(AudioInMos="4", CallDuration="0", Direction="inbound", From="anonymous")
    store.write_batch([write])
    stored = store.get_call(write.record.account_sid, write.record.call_sid)
    assert stored is not None and stored.record == write.record
    assert isinstance(stored.record.mos, float) and isinstance(stored.record.duration_s, int)
    assert stored.record.started_at.utcoffset() == timedelta(0)


def test_iter_calls_orders_by_start_time(store: Store) -> None:
    late = call(Timestamp="Thu, 04 Apr 2024 18:32:15 +0000")
    early = call(Timestamp="Wed, 03 Jan 2024 18:32:15 +0000")
    store.write_batch([late, early])
    assert [c.record.call_sid for c in store.iter_calls(batch_size=1)] == [
        early.record.call_sid,
        late.record.call_sid,
    ]


def test_iter_calls_and_count_calls_of_a_selection(store: Store) -> None:
    april = call(Timestamp="Thu, 04 Apr 2024 18:32:15 +0000", From="+442079460000")
    april_us = call(Timestamp="Thu, 04 Apr 2024 18:32:15 +0000", To="+18005550199")
    january = call(Timestamp="Wed, 03 Jan 2024 18:32:15 +0000", AccountSid="AC-other")
    store.write_batch([april, april_us, january])
    since = datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)
    cases = [
        (CallSelection(), [april, april_us, january]),
        (CallSelection(since=since), [april, april_us]),  # since is inclusive
        (CallSelection(until=since), [january]),  # until is not
        (CallSelection(region="GB"), [april]),
        (CallSelection(to="+18005550199"), [april_us]),
        (CallSelection(account_sid="AC-other"), [january]),
        (CallSelection(since=since, region="US"), [april_us]),
        (CallSelection(until=since, region="GB"), []),
    ]
    for selection, expected in cases:
        sids = [c.record.call_sid for c in store.iter_calls(selection=selection)]
        assert sorted(sids) == sorted(w.record.call_sid for w in expected), selection
        assert store.count_calls(selection) == len(expected)


def test_quarantine_keeps_entries_and_bounds_them(store: Store) -> None:
    assert store.write_batch([junk(n) for n in range(3)]) == [SaveResult.QUARANTINED] * 3
    (newest, *_) = store.list_quarantine(limit=3)
    entry = store.get_quarantine(newest.id - 2)
    assert entry is not None
    assert (entry.reason, entry.errors, entry.body) == ("invalid", {"From": "bad"}, b"body0")
    assert entry.headers == {"content-type": "x"} and entry.received_at == NOW
    store.write_batch([junk(n) for n in range(3, 8)])  # the cap is 5
    assert store.quarantine_counts() == (5, 3)
    ids = [e.id for e in store.list_quarantine(limit=10)]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)
    assert [e.id for e in store.list_quarantine(limit=10, before_id=ids[2])] == ids[3:]
    assert store.get_quarantine(ids[-1] - 1) is None
    store.delete_quarantine(ids[0])
    assert store.quarantine_counts() == (4, 3)


def test_quarantine_retention_drops_old_entries(store: Store) -> None:
    store.write_batch([junk(0, at=NOW - timedelta(days=400)), junk(1, at=datetime.now(UTC))])
    assert store.quarantine_counts() == (1, 1)


def test_prune_removes_old_calls_and_their_history(store: Store) -> None:
    old = call(Timestamp="Mon, 01 Jan 2024 10:00:00 +0000")
    old_update = CallWrite(
        parse_callback(
            callback_fields(
                CallSid=old.record.call_sid,
                Timestamp="Mon, 01 Jan 2024 10:00:00 +0000",
                CallDuration="1",
            )
        ),
        NOW,
    )
    recent = call(Timestamp="Fri, 01 Nov 2024 10:00:00 +0000")
    store.write_batch([old, recent])
    store.write_batch([old_update])
    assert store.prune(datetime(2024, 6, 1, tzinfo=UTC)) == 1
    assert [c.record.call_sid for c in store.iter_calls()] == [recent.record.call_sid]
    assert store.call_history(old.record.account_sid, old.record.call_sid) == []
    assert store.get_call(old.record.account_sid, old.record.call_sid) is None
    # the pruned call may come back (e.g. reconciled) and is then a new call
    assert store.write_batch([old]) == [SaveResult.INSERTED]


def test_ping_and_counts_on_an_empty_store(store: Store) -> None:
    store.ping()
    assert store.count_calls() == 0
    assert store.quarantine_counts() == (0, 0)
    assert list(store.iter_calls()) == []


def test_database_url_in_messages_hides_the_password() -> None:
    from callpulse.store import without_password

    assert without_password("postgresql://app:s3cret@db:5432/calls") == (
        "postgresql://app:***@db:5432/calls"
    )
    assert without_password("sqlite:///calls.db") == "sqlite:///calls.db"
    assert without_password("postgresql://app@db/calls?password=s3cret&sslmode=require") == (
        "postgresql://app@db/calls?password=***&sslmode=require"
    )


def odd(write: CallWrite, **changes: object) -> CallWrite:
    """The write with values no callback parser lets through (the store is the last line)."""
    return CallWrite(dataclasses.replace(write.record, **changes), write.received_at)  # type: ignore[arg-type]


def test_a_value_the_database_cannot_hold_is_refused(store: Store) -> None:
    stored = call()
    store.write_batch([stored])
    for bad in (
        odd(call(), to_number="+1555\ud800"),  # a lone surrogate: not encodable as UTF-8
        odd(stored, to_number="+1555\ud800"),  # the same, as an update of a stored call
        odd(stored, duration_s=10**30),  # beyond any integer column
    ):
        with pytest.raises(StoreRefused):
            store.write_batch([bad])
    fine = call()
    assert store.write_batch([fine]) == [SaveResult.INSERTED]  # the store goes on
    assert store.count_calls() == 2
    kept = {c.record.call_sid: c.record for c in store.iter_calls()}
    assert kept == {stored.record.call_sid: stored.record, fine.record.call_sid: fine.record}


def test_a_revoked_session_stays_revoked_until_it_expires(store: Store) -> None:
    now = datetime.now(UTC)
    assert not store.session_revoked("a" * 32)
    store.revoke_session("a" * 32, now + timedelta(days=7))
    store.revoke_session("a" * 32, now + timedelta(days=7))  # a second log-out: no error
    store.revoke_session("e" * 32, now - timedelta(seconds=1))  # expired already
    assert store.session_revoked("a" * 32)
    assert not store.session_revoked("b" * 32)
    store.revoke_session("c" * 32, now + timedelta(days=1))  # revoking drops expired ones
    assert sql_rows(store, "SELECT nonce FROM revoked_sessions ORDER BY nonce") == [
        ("a" * 32,),
        ("c" * 32,),
    ]
