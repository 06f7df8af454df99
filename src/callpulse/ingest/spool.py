"""A local durable spool: callbacks go here (fsync'd) when the database cannot take them.

Each process appends to its own ``active-<pid>-<ns>.jsonl`` file, holding an exclusive flock on it
while the file is open; a drainer may take any file whose lock it can get, so files left by a
process that died are drained by whichever process runs next. A process drains its own file in
place (it keeps the lock and remembers how far it got), so an outage never multiplies files.
Re-applying a drained file is harmless (call writes are idempotent), which is what makes a crash
in mid-drain safe.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from callpulse.callback import CallRecord
from callpulse.store.base import CallWrite, QuarantineWrite, WriteOp
from callpulse.store.problems import problems_from_json

log = logging.getLogger(__name__)
RESCAN_S = 1.0


def op_to_json(op: WriteOp) -> dict[str, Any]:
    """A write as one spool line's JSON object (the spool's own format, read back below)."""
    if isinstance(op, CallWrite):
        r = op.record
        return {
            "op": "call",
            "received_at": op.received_at.isoformat(),
            "source": op.source,
            "record": {
                "account_sid": r.account_sid,
                "call_sid": r.call_sid,
                "from": r.from_number,
                "to": r.to_number,
                "started_at": r.started_at.isoformat(),
                "status": r.status,
                "duration_s": r.duration_s,
                "mos": r.mos,
                "extra": r.extra,
                "problems": [p.as_dict() for p in r.problems],
            },
        }
    return {
        "op": "quarantine",
        "received_at": op.received_at.isoformat(),
        "reason": op.reason,
        "errors": op.errors,
        "method": op.method,
        "url": op.url,
        "headers": op.headers,
        "body": base64.b64encode(op.body).decode(),
        "body_size": op.body_size,
    }


def op_from_json(data: dict[str, Any]) -> WriteOp:
    """The write of one spool line; lines of older files lack fields and still read."""
    received_at = datetime.fromisoformat(data["received_at"])
    if data["op"] == "call":
        r = data["record"]
        record = CallRecord(
            account_sid=r["account_sid"],
            call_sid=r["call_sid"],
            from_number=r["from"],
            to_number=r["to"],
            started_at=datetime.fromisoformat(r["started_at"]),
            status=r["status"],
            duration_s=r["duration_s"],
            mos=r["mos"],
            extra=r["extra"],
            problems=problems_from_json(r.get("problems")),  # absent in older spool files
        )
        return CallWrite(record, received_at, data["source"])
    return QuarantineWrite(
        received_at=received_at,
        reason=data["reason"],
        errors=data["errors"],
        method=data["method"],
        url=data["url"],
        headers=data["headers"],
        body=base64.b64decode(data["body"]),
        body_size=data["body_size"],
    )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._active: BinaryIO | None = None
        self._active_path: Path | None = None
        self._drained_to = 0  # bytes of the own file already stored by an earlier drain
        self._active_count = 0
        self._files_seen = False
        self._scanned_at = float("-inf")

    def append(self, ops: Sequence[WriteOp]) -> None:
        """Write ``ops`` durably; raises OSError when the disk cannot take them."""
        if self._active is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"active-{os.getpid()}-{time.time_ns()}.jsonl"
            handle = path.open("ab")
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _fsync_dir(self.directory)
            self._active, self._active_path = handle, path
            self._active_count = self._drained_to = 0
        data = b"".join(json.dumps(op_to_json(op)).encode() + b"\n" for op in ops)
        try:
            self._active.write(data)
            self._active.flush()
            os.fsync(self._active.fileno())
        except OSError:
            # A torn tail must not run into the next append: leave this file to the drainer
            # (which ignores a torn last line) and start a new one next time.
            with contextlib.suppress(OSError):
                self._forget_active()
            raise
        self._active_count += len(ops)

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)

    def depth(self) -> int:
        """Callbacks waiting in this process's own spool file."""
        return self._active_count

    def has_pending(self) -> bool:
        if self._active is not None:
            return True
        # Files of other (or dead) processes: rescanned at most once a second, off the hot path.
        if time.monotonic() - self._scanned_at >= RESCAN_S:
            self._rescan()
        return self._files_seen

    def _rescan(self) -> None:
        self._files_seen = bool(self.files())
        self._scanned_at = time.monotonic()

    def drain(self, write: Callable[[Sequence[WriteOp]], object], batch_size: int = 500) -> int:
        """Move every spooled op whose file this process can lock into the store.

        ``write`` raises when the store is still unavailable; files not yet drained stay. This
        process's own file is drained in place, under the lock it holds: it is closed and removed
        only once all its ops are stored, so retries during an outage make no new files.
        """
        moved = 0
        own = self._active_path
        for path in self.files():
            if path == own:
                continue
            try:
                handle = path.open("rb")
            except FileNotFoundError:
                continue  # drained meanwhile by another process
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process is still appending to it
                if not path.exists():
                    continue
                ops = self._read(path, handle.read())
                for start in range(0, len(ops), batch_size):
                    write(ops[start : start + batch_size])
                path.unlink()
                _fsync_dir(self.directory)
                moved += len(ops)
        if own is not None:
            moved += self._drain_own(own, write, batch_size)
        self._rescan()
        return moved

    def _drain_own(
        self, path: Path, write: Callable[[Sequence[WriteOp]], object], batch_size: int
    ) -> int:
        """Store the ops of this process's file from where the last drain stopped; once all are
        stored, close and remove the file (the next append starts a new one)."""
        try:
            reader = path.open("rb")  # the lock stays with self._active meanwhile
        except FileNotFoundError:
            log.error("spool file %s vanished; its callbacks are lost", path)
            self._forget_active()
            return 0
        with reader:
            reader.seek(self._drained_to)
            data = reader.read()
        complete = data[: data.rfind(b"\n") + 1]  # every acknowledged line ends in a newline
        lines = complete.splitlines(keepends=True)
        moved = 0
        for start in range(0, len(lines), batch_size):
            chunk = lines[start : start + batch_size]
            ops = self._read(path, b"".join(chunk))
            if ops:
                write(ops)
            self._drained_to += sum(map(len, chunk))
            self._active_count = max(0, self._active_count - len(ops))
            moved += len(ops)
        if len(complete) == len(data):  # nothing torn after the last line: the file is done
            path.unlink()
            _fsync_dir(self.directory)
            self._forget_active()
        return moved

    def _forget_active(self) -> None:
        # Forgotten before it is closed: closing flushes what a failed append left buffered,
        # which raises again while the disk is full, and a closed handle must never be reused.
        active = self._active
        self._active, self._active_path = None, None
        self._active_count = self._drained_to = 0
        if active is not None:
            active.close()  # releases our lock

    @staticmethod
    def _read(path: Path, data: bytes) -> list[WriteOp]:
        ops = []
        lines = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                ops.append(op_from_json(json.loads(line)))
            except (ValueError, KeyError) as exc:
                # A torn last line was never acknowledged (its fsync did not finish).
                if number != len(lines):
                    log.error("spool %s line %d unreadable, skipped: %s", path, number, exc)
        return ops
