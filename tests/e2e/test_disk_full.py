"""A real full disk under a running `callpulse serve`: the SQLite database on a 4 MB tmpfs, the
spool on a second tmpfs.

The promise (ingest/writer.py): when the database cannot write, callbacks go to the spool and are
still answered 200; when the spool cannot write either, the answer is 503, so the sender retries;
once space returns the spool drains into the database by itself. Every callback answered 200 is
then stored exactly once, nothing is answered 500, and the log holds no traceback.

Needs root (it mounts tmpfs); without it the test fails rather than skips.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, callback_fields, sign

pytestmark = pytest.mark.slow  # full disks under a `serve` process: needs real processes


@contextlib.contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"cannot mount a {size} tmpfs on {directory} (this test needs root and mount): "
            f"{mounted.stderr.strip()}"
        )
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(directory: Path) -> Path:
    """A filler file taking every free byte of the file system holding ``directory``."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (65536, 512):  # then whatever the 64 KB steps left over
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError:
                pass
    return filler


class Sender:
    """Signed callbacks, one at a time; remembers what was sent and what got a 200."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.client = httpx.Client(timeout=30)
        self.sent: set[str] = set()
        self.acked: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()

    def send(self) -> str:
        """Send one new callback; return its result (or the HTTP status, when not 200)."""
        fields = callback_fields(Padding="p" * 1500)
        url = self.server.callback_url
        self.sent.add(fields["CallSid"])
        response = self.client.post(
            url, data=fields, headers={"X-SignalWire-Signature": sign(url, fields)}
        )
        if response.status_code == 200:
            self.acked[fields["CallSid"]] += 1
            outcome = str(response.json()["result"])
        else:
            outcome = str(response.status_code)
        self.answers[outcome] += 1
        return outcome

    def send_until(self, wanted: str, at_least: int, limit: int) -> int:
        """Send until ``at_least`` answers were ``wanted``; return how many were sent."""
        seen = 0
        for sent in range(1, limit + 1):
            if self.send() == wanted:
                seen += 1
                if seen >= at_least:
                    return sent
        raise AssertionError(f"only {seen} of {at_least} {wanted!r} in {limit}: {self.answers}")


def wait_until(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def test_full_disks_answer_503_never_lose_and_recover_by_themselves(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "db", "4m") as db_dir, tmpfs(tmp_path / "spool", "8m") as spool_dir:
        server = ServerProcess(
            tmp_path,  # the log stays on a disk with room
            env={
                "CALLPULSE_DATABASE_URL": f"sqlite:///{db_dir / 'callpulse.db'}",
                "CALLPULSE_SPOOL_DIR": str(spool_dir / "spool"),
            },
        ).start()
        sender = Sender(server)
        try:
            sender.send_until("inserted", 20, 20)

            # The database's disk fills: the spool takes over, answers stay 200.
            db_filler = fill(db_dir)
            sender.send_until("spooled", 100, 2000)
            readiness = httpx.get(f"{server.base_url}/readyz", timeout=10)
            assert readiness.status_code == 503, readiness.text
            assert readiness.json()["status"] == "degraded"

            # The spool's disk fills too: 503, the sender is to retry.
            spool_filler = fill(spool_dir)
            sender.send_until("503", 20, 2000)
            # ... for longer than the writer waits between attempts to drain the spool.
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                assert sender.send() == "503"
                time.sleep(0.05)

            # Room in the spool again: 200 (spooled) again, without a restart.
            spool_filler.unlink()
            sender.send_until("spooled", 20, 200)

            # Room in the database again: the spool drains into it by itself.
            db_filler.unlink()
            wait_until(
                lambda: not list((spool_dir / "spool").glob("*.jsonl")),
                30,
                "the spool drained into the database",
            )
            wait_until(
                lambda: httpx.get(f"{server.base_url}/readyz", timeout=10).status_code == 200,
                30,
                "/readyz is 200 again",
            )
            sender.send_until("inserted", 20, 20)
        finally:
            sender.client.close()
            server.stop()

        with server.store() as store:
            stored = Counter(call.record.call_sid for call in store.iter_calls())
        log = server.log_path.read_text(errors="replace")

    assert set(sender.answers) <= {"inserted", "spooled", "503"}, sender.answers
    doubled = [sid for sid, n in stored.items() if n > 1]
    assert not doubled, f"stored more than once: {doubled[:5]}"
    lost = set(sender.acked) - set(stored)
    assert not lost, f"{len(lost)} callbacks answered 200 are not stored: {sorted(lost)[:5]}"
    assert set(stored) <= sender.sent, "a call that was never sent is stored"
    assert "Traceback" not in log, log[-4000:]
    print(
        f"\ndisk full: {sum(sender.answers.values())} callbacks, answers "
        f"{dict(sender.answers)}; {len(sender.acked)} acknowledged, all stored once; "
        f"{len(stored) - len(sender.acked)} stored after a 503"
    )
