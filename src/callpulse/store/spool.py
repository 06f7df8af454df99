"""A local durable spool: callbacks go here (fsync'd) when the database cannot take them.

Each process appends to its own ``active-<pid>-<ns>.jsonl`` file, holding an exclusive flock on it
while the file is open; a drainer may take any file whose lock it can get, so files left by a
process that died are drained by whichever process runs next. Re-applying a drained file is
harmless (call writes are idempotent), which is what makes a crash in mid-drain safe.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from callpulse.store.base import SaveResult, WriteOp, op_from_json, op_to_json

log = logging.getLogger(__name__)
RESCAN_S = 1.0


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
            self._active, self._active_count = handle, 0
        data = b"".join(json.dumps(op_to_json(op)).encode() + b"\n" for op in ops)
        self._active.write(data)
        self._active.flush()
        os.fsync(self._active.fileno())
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

    def drain(
        self, write: Callable[[Sequence[WriteOp]], list[SaveResult]], batch_size: int = 500
    ) -> int:
        """Move every spooled op whose file this process can lock into the store.

        ``write`` raises when the store is still unavailable; files not yet drained stay.
        """
        if self._active is not None:
            # Closing releases our lock; the file is then drained like any other. Forget the
            # handle first: closing flushes what a failed append left buffered, which raises
            # again while the disk is full, and a closed handle must not be written to later.
            active, self._active = self._active, None
            active.close()
        moved = 0
        for path in self.files():
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
        self._active_count = 0
        self._rescan()
        return moved

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
