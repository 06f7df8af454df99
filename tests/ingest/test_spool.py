from __future__ import annotations

import fcntl
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from callpulse.callback import parse_callback
from callpulse.ingest.spool import Spool, op_to_json
from callpulse.store import Store
from callpulse.store.base import CallWrite, SaveResult, WriteOp
from callpulse.store.errors import StoreUnavailable
from callpulse.store.sqlite import SQLiteStore
from tests.store.test_store import NOW, junk
from tests.support import callback_fields


def writes(n: int) -> list[CallWrite]:
    return [CallWrite(parse_callback(callback_fields()), NOW) for _ in range(n)]


def test_ops_survive_the_spool_round_trip(tmp_path: Path, store: SQLiteStore) -> None:
    spool = Spool(tmp_path / "spool")
    ops: list[WriteOp] = [*writes(3), junk(1)]
    spool.append(ops[:2])
    spool.append(ops[2:])
    assert spool.depth() == 4 and spool.has_pending()
    seen: list[WriteOp] = []

    def write(batch: Sequence[WriteOp]) -> list[SaveResult]:
        seen.extend(batch)
        return store.write_batch(batch)

    assert spool.drain(write, batch_size=3) == 4
    assert seen == ops  # same content, same order
    assert not spool.has_pending() and spool.files() == []
    assert store.count_calls() == 3 and store.quarantine_counts() == (1, 0)


def test_failed_drain_keeps_everything(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(writes(2))

    def broken(batch: Sequence[WriteOp]) -> list[SaveResult]:
        raise RuntimeError("database still down")

    with pytest.raises(RuntimeError):
        spool.drain(broken)
    assert len(spool.files()) == 1 and spool.has_pending() and spool.depth() == 2
    spool.append(writes(1))  # the same file: still ours, still locked
    assert len(spool.files()) == 1 and spool.depth() == 3


def test_outage_retries_keep_one_file_and_store_each_op_once(tmp_path: Path, store: Store) -> None:
    spool = Spool(tmp_path / "spool")
    down = True
    attempts = 0

    def write(batch: Sequence[WriteOp]) -> list[SaveResult]:
        nonlocal attempts
        attempts += 1
        if down:
            raise StoreUnavailable("database still down")
        return store.write_batch(batch)

    spooled: list[WriteOp] = []
    for _ in range(50):  # a drain retry after each spooled batch, as the writer does
        batch: list[WriteOp] = [*writes(2), junk(len(spooled))]
        spool.append(batch)
        spooled.extend(batch)
        with pytest.raises(StoreUnavailable):
            spool.drain(write, batch_size=4)
        assert len(spool.files()) == 1
    assert spool.depth() == 150 and attempts == 50
    down = False
    assert spool.drain(write, batch_size=4) == 150
    assert spool.files() == [] and not spool.has_pending() and spool.depth() == 0
    assert store.count_calls() == 100
    assert store.quarantine_counts() == (5, 45)  # the fixture's cap is 5 entries
    spool.append(writes(1))  # a later outage starts a new file
    assert len(spool.files()) == 1


def test_a_drain_that_fails_midway_resumes_where_it_stopped(tmp_path: Path, store: Store) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([junk(n) for n in range(4)])
    calls = 0

    def second_batch_fails(batch: Sequence[WriteOp]) -> list[SaveResult]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StoreUnavailable("down again")
        return store.write_batch(batch)

    with pytest.raises(StoreUnavailable):
        spool.drain(second_batch_fails, batch_size=2)
    assert store.quarantine_counts() == (2, 0) and spool.depth() == 2
    assert spool.drain(store.write_batch, batch_size=2) == 2
    bodies = sorted(e.body for e in store.list_quarantine())
    assert bodies == [b"body0", b"body1", b"body2", b"body3"]  # each stored once
    assert spool.files() == []


def test_torn_last_line_is_ignored_and_orphans_are_drained(
    tmp_path: Path, store: SQLiteStore
) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    good = json.dumps(op_to_json(writes(1)[0]))
    (directory / "active-1-1.jsonl").write_text(good + "\n" + good[:40])  # crashed mid-write
    spool = Spool(directory)
    assert spool.has_pending()
    assert spool.drain(store.write_batch) == 1
    assert store.count_calls() == 1


def test_file_locked_by_a_live_process_is_left_alone(tmp_path: Path, store: SQLiteStore) -> None:
    directory = tmp_path / "spool"
    theirs = Spool(directory)
    theirs.append(writes(1))  # holds the flock while its file is open
    ours = Spool(directory)
    assert ours.drain(store.write_batch) == 0
    assert store.count_calls() == 0
    assert theirs.drain(store.write_batch) == 1
    assert store.count_calls() == 1


def test_lock_is_released_with_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(writes(1))
    (path,) = spool.files()
    with path.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            locked = True
        else:
            locked = False
    assert locked
