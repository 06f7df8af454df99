"""Crash durability: `kill -9` the receiver under concurrent load, restart it on the same files.

Every callback that was answered 200 must be in the database exactly once afterwards; nothing may
be stored twice, and nothing that was never sent may appear. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support import BACKENDS, ServerProcess, backend_database, callback_fields, sign

pytestmark = pytest.mark.slow  # kill -9 of a loaded `serve`: needs real processes

ROUNDS = 2
THREADS = 6
PER_THREAD = 250  # at most 1500 callbacks a round, 3000 in all
KILL_AFTER_ACKS = 400  # kill once this many were acknowledged: well inside the load
LOAD_DEADLINE_S = 15.0
RETRY_EVERY = 7  # every 7th request re-sends an earlier callback of the same thread


class Load:
    """Threads posting signed callbacks; records what was sent and what got a 200."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.sent: dict[str, dict[str, str]] = {}  # CallSid -> fields
        self.acked: dict[str, str] = {}  # CallSid -> result of the last 200
        self.results: dict[str, int] = {}
        self.failures = 0
        self.requests = 0
        self.killed = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(THREADS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "load threads did not finish"

    def ack_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def _run(self) -> None:
        url = self.server.callback_url
        mine: list[dict[str, str]] = []
        with httpx.Client(timeout=10) as client:
            for n in range(PER_THREAD):
                if self.killed.is_set():
                    return
                if mine and n % RETRY_EVERY == 0:
                    fields = mine[n % len(mine)]  # a sender retry of an earlier callback
                else:
                    fields = callback_fields(CallDuration=str(n))
                    mine.append(fields)
                sid = fields["CallSid"]
                with self.lock:
                    self.sent[sid] = fields
                    self.requests += 1
                try:
                    response = client.post(
                        url,
                        data=fields,
                        headers={"X-SignalWire-Signature": sign(url, fields)},
                    )
                except httpx.HTTPError:
                    with self.lock:
                        self.failures += 1
                    if self.killed.is_set():
                        return
                    continue
                with self.lock:
                    if response.status_code == 200:
                        result = response.json()["result"]
                        self.acked[sid] = result
                        self.results[result] = self.results.get(result, 0) + 1
                    else:
                        self.results[str(response.status_code)] = (
                            self.results.get(str(response.status_code), 0) + 1
                        )


def stored_calls(server: ServerProcess) -> tuple[dict[str, int], dict[str, int]]:
    """(CallSid -> how many times it is stored, CallSid -> stored CallDuration) of every call."""
    with server.store() as store:
        calls = list(store.iter_calls())
        assert store.count_calls() == len(calls)
    counts = Counter(call.record.call_sid for call in calls)
    return dict(counts), {call.record.call_sid: call.record.duration_s for call in calls}


def wait_for_empty_spool(spool_dir: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not spool_dir.is_dir() or not any(spool_dir.glob("*.jsonl")):
            return
        time.sleep(0.1)
    raise AssertionError(f"spool not drained: {sorted(spool_dir.iterdir())}")


def load_then_kill(server: ServerProcess) -> Load:
    """Run the load against ``server`` and SIGKILL it once enough callbacks were answered."""
    load = Load(server)
    load.start()
    deadline = time.monotonic() + LOAD_DEADLINE_S
    while load.ack_count() < KILL_AFTER_ACKS and time.monotonic() < deadline:
        time.sleep(0.01)
    acked_before_kill = load.ack_count()
    server.kill()
    load.killed.set()
    load.join(timeout=20)
    assert acked_before_kill >= KILL_AFTER_ACKS, f"load too slow: {load.results}"
    assert load.requests < THREADS * PER_THREAD, "the server was killed after the load ended"
    assert set(load.results) <= {"inserted", "duplicate"}, load.results
    return load


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_under_load_loses_no_acknowledged_callback(backend: str, tmp_path: Path) -> None:
    with backend_database(backend, tmp_path) as database_url:
        crash_twice_then_check(tmp_path, database_url)


def crash_twice_then_check(tmp_path: Path, database_url: str) -> None:
    # Two crashes: the second one hits a server that started on the first one's files.
    sent: dict[str, dict[str, str]] = {}
    acked: set[str] = set()
    for _round in range(ROUNDS):
        load = load_then_kill(ServerProcess(tmp_path, database_url=database_url).start())
        sent.update(load.sent)
        acked.update(load.acked)

    restarted = ServerProcess(tmp_path, database_url=database_url).start()
    try:
        wait_for_empty_spool(tmp_path / "spool")
        counts, stored = stored_calls(restarted)
        twice = {sid: n for sid, n in counts.items() if n != 1}
        assert not twice, f"stored more than once: {twice}"
        lost = acked - set(counts)
        assert not lost, f"{len(lost)} acknowledged callbacks lost, e.g. {sorted(lost)[:3]}"
        assert set(counts) <= set(sent), "a call that was never sent is stored"
        wrong = [
            sid for sid, duration in stored.items() if duration != int(sent[sid]["CallDuration"])
        ]
        assert not wrong, f"stored content differs from what was sent: {wrong[:3]}"

        # The export agrees, and the new server still knows every acknowledged call: the
        # sender's retries after the crash are duplicates.
        exported = [line for line in restarted.cli("export").stdout.splitlines() if line.strip()]
        assert len(exported) == len(counts)
        with httpx.Client(timeout=10) as client:
            for sid in sorted(acked)[:20]:
                response = restarted.post(sent[sid], client=client)
                assert response.json() == {"result": "duplicate"}, sid
            fresh = callback_fields()
            assert restarted.post(fresh, client=client).json() == {"result": "inserted"}
        assert stored_calls(restarted)[0] == {**counts, fresh["CallSid"]: 1}
    finally:
        restarted.stop()
