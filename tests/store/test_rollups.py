"""Rollups always equal a recomputation from the stored calls, whatever order callbacks,
retries, corrections and recovered calls arrive in, wherever compaction stands, and after a
rebuild: the minutes of every call, the coarser levels of the calls before compacted_until."""

from __future__ import annotations

import contextlib
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callpulse.callback import WITHHELD, CallRecord, Problem
from callpulse.config import Settings
from callpulse.regions import region_of
from callpulse.store import Store, open_store
from callpulse.store.base import RECONCILED, CallWrite
from callpulse.store.dialect import to_epoch_ms
from callpulse.store.rollups import FAMILIES, LEVELS, METRICS
from tests.analytics.truth import is_repeat
from tests.support import BACKENDS, backend_database, compacted_from, sql_rows

START = datetime(2026, 5, 30, 22, 0, tzinfo=UTC)
CALLERS = ("+14155550100", "+442079460000", "+33612345678", "sip:a@example.com", WITHHELD)
PROBLEM = Problem("AudioInMos", "7.2", "out of range (1-5)")

write = st.builds(
    dict,
    call=st.integers(0, 11),
    kind=st.sampled_from(["callback", "callback", "correction", RECONCILED]),
    minute=st.integers(0, 3 * 24 * 60),
    second=st.integers(0, 59),
    caller=st.sampled_from(CALLERS),
    to=st.sampled_from(["+18005550001", "+18005550002"]),
    account=st.sampled_from(["AC1", "AC2"]),
    status=st.sampled_from(["completed", "completed", "failed", "busy"]),
    duration=st.one_of(st.none(), st.integers(0, 5000)),
    problem=st.booleans(),
    mos=st.one_of(st.none(), st.integers(1000, 5000).map(lambda m: m / 1000)),
)


def to_writes(plan: list[dict[str, Any]]) -> list[CallWrite]:
    """The first write of a call creates it; later ones retry, correct or recover it."""
    latest: dict[int, CallRecord] = {}
    writes = []
    for step in plan:
        record = CallRecord(
            account_sid=step["account"],
            call_sid=f"CA{step['call']:032x}",
            from_number=step["caller"],
            to_number=step["to"],
            started_at=START + timedelta(minutes=step["minute"], seconds=step["second"]),
            status=step["status"],
            duration_s=step["duration"] if step["status"] == "completed" else 0,
            mos=step["mos"],
            problems=(PROBLEM,) if step["problem"] else (),
        )
        known = latest.get(step["call"])
        if known is not None:  # same call: a correction may change all but its identity
            record = replace(record, account_sid=known.account_sid)
            if step["kind"] == "callback":
                record = known  # a retry
        source = RECONCILED if step["kind"] == RECONCILED else "callback"
        writes.append(CallWrite(record, START, source))
        if known is None or source == "callback":
            latest[step["call"]] = record
    return writes


def duration_bin(d: int) -> int:  # rollups.DURATION_BIN_SQL, written out
    return d if d < 60 else d // 5 * 5 if d < 600 else d // 60 * 60 if d < 3600 else d // 600 * 600


def recompute(
    calls: list[CallRecord], compacted_until: int | None = None
) -> tuple[dict[Any, Any], dict[Any, int]]:
    """Every rollup table's rows, keyed by (table, bucket, key columns...); the levels above
    minutes hold only the calls that started before ``compacted_until``."""
    metrics: dict[Any, list[float]] = defaultdict(lambda: [0] * len(METRICS))
    hist: dict[Any, int] = defaultdict(int)
    for call in calls:
        ms = int(call.started_at.timestamp() * 1000)
        completed = call.status == "completed"
        rated = completed and call.mos is not None
        timed = completed and call.duration_s is not None
        values = [1, completed, call.status == "failed", call.duration_s if timed else 0,
                  call.mos if rated else 0, rated, is_repeat(call, calls), timed,
                  bool(call.problems)]  # fmt: skip
        for level, size in LEVELS.items():
            if level != "minute" and compacted_until is not None and ms >= compacted_until:
                continue
            bucket = ms - ms % size
            for key in (
                (f"rollup_{level}", bucket, call.account_sid, call.to_number,
                 region_of(call.from_number)),
                (f"rollup_{level}_total", bucket, call.account_sid),
                (f"rollup_{level}_number", bucket, call.account_sid, call.to_number),
            ):  # fmt: skip
                metrics[key] = [a + b for a, b in zip(metrics[key], values, strict=True)]
            for hist_key in (
                (f"rollup_{level}_hist", bucket, call.account_sid, call.to_number),
                (f"rollup_{level}_total_hist", bucket, call.account_sid),
            ):
                if rated:
                    assert call.mos is not None
                    hist[(*hist_key, 0, int(call.mos * 100 + 1e-9))] += 1
                if timed:
                    assert call.duration_s is not None
                    hist[(*hist_key, 1, duration_bin(call.duration_s))] += 1
    return dict(metrics), dict(hist)


def stored_rollups(store: Store) -> tuple[dict[Any, Any], dict[Any, int]]:
    metrics, hist = {}, {}
    for level in LEVELS:
        for family in FAMILIES:
            table = family.table(level)
            keys = ", ".join(["bucket", *family.keys, *(["kind", "bin"] if family.hist else [])])
            values = "sum(n)" if family.hist else ", ".join(f"sum({m})" for m in METRICS)
            width = keys.count(",") + 1
            for row in sql_rows(store, f"SELECT {keys}, {values} FROM {table} GROUP BY {keys}"):
                if not any(row[width:]):
                    continue  # every call once counted here has moved elsewhere
                if family.hist:
                    hist[(table, *row[:width])] = int(row[width])
                else:
                    metrics[(table, *row[:width])] = [float(v) for v in row[width:]]
    return metrics, hist


def assert_rollups_match(store: Store) -> None:
    calls = [stored.record for stored in store.iter_calls()]
    want_metrics, want_hist = recompute(calls, store.rollups_compacted_until())
    got_metrics, got_hist = stored_rollups(store)
    assert got_hist == want_hist
    assert got_metrics.keys() == want_metrics.keys()
    for key, values in want_metrics.items():
        assert got_metrics[key] == pytest.approx([float(v) for v in values]), key


@contextlib.contextmanager
def fresh_store(backend: str) -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp, backend_database(backend, Path(tmp)) as url:
        store = open_store(Settings(database_url=url))
        store.upgrade()
        try:
            yield store
        finally:
            store.close()


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(write, min_size=1, max_size=40),
    cuts=st.lists(st.integers(1, 10)),
    created_minute=st.one_of(st.none(), st.integers(0, 3 * 24 * 60)),
    compactions=st.lists(st.one_of(st.none(), st.integers(0, 3 * 24 * 60))),
    prune_minute=st.integers(0, 4 * 24 * 60),
)
def test_rollups_equal_recomputation(
    backend: str,
    plan: list[dict[str, Any]],
    cuts: list[int],
    created_minute: int | None,
    compactions: list[int | None],
    prune_minute: int,
) -> None:
    """``created_minute``: compacted_until as a database created then has it (None: created
    now, every call is late); after each batch, a compaction up to a minute, or none."""
    writes = to_writes(plan)
    with fresh_store(backend) as store:
        if created_minute is not None:
            compacted_from(store, START + timedelta(minutes=created_minute))
        at, rounds = 0, iter(compactions)
        for size in [*cuts, len(writes)]:
            if at < len(writes):
                store.write_batch(writes[at : at + size])
                at += size
                if (minute := next(rounds, None)) is not None:
                    store.compact_rollups(to_epoch_ms(START + timedelta(minutes=minute)))
                assert_rollups_match(store)
        store.rebuild_rollups()
        assert_rollups_match(store)
        if compactions:  # compacted past every call, each level holds every call
            until = store.compact_rollups(to_epoch_ms(START + timedelta(days=5)))
            assert until >= to_epoch_ms(START + timedelta(days=5))
            assert store.rollups_compacted_until() == until
            assert_rollups_match(store)
        # Pruning keeps the rollups of what it removes; a rebuild afterwards keeps them too.
        before = stored_rollups(store)
        store.prune(START + timedelta(minutes=prune_minute))
        assert stored_rollups(store) == before
        store.rebuild_rollups()
        after = stored_rollups(store)
        assert after[1] == before[1]
        assert after[0].keys() == before[0].keys()
        for key, values in before[0].items():
            assert after[0][key] == pytest.approx(values), key
