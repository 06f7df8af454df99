"""The Store interface the ingest pipeline, CLI and web layer talk to, and the write ops."""

from __future__ import annotations

import abc
import contextlib
import enum
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from callpulse.callback import CallRecord
from callpulse.store.migrating import Progress
from callpulse.store.reads import RollupReads
from callpulse.store.records import (
    EVERY_CALL,
    CallSelection,
    MigrationState,
    QuarantineEntry,
    StoredCall,
)

if TYPE_CHECKING:
    from callpulse.store.alerts import AlertBook


class SaveResult(enum.StrEnum):
    INSERTED = "inserted"
    DUPLICATE = "duplicate"
    UPDATED = "updated"
    SPOOLED = "spooled"
    QUARANTINED = "quarantined"
    REFUSED = "refused"  # valid, but the database cannot hold it: kept in quarantine instead


RECONCILED = "reconciled"  # a CallWrite source: recovered from the Calls API


@dataclass(frozen=True, slots=True)
class CallWrite:
    record: CallRecord
    received_at: datetime
    source: str = "callback"  # or RECONCILED: inserted when missing, never changes a stored call

    def fingerprint(self) -> int:
        """Identifies the callback's content, so a retry is told from a real update."""
        r = self.record
        timestamp = r.problem("Timestamp")
        content: list[Any] = [
            r.from_number,
            r.to_number,
            # A time of receipt differs on every retry: what identifies it is what was sent.
            r.started_at.isoformat() if timestamp is None else ["raw", timestamp.value],
            r.status,
            r.duration_s,
            r.mos,
            r.extra,
        ]
        if r.problems:  # (calls without problems keep the fingerprints they always had)
            content.append([[p.field, p.value] for p in r.problems])
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return int.from_bytes(
            hashlib.blake2b(canonical.encode(), digest_size=8).digest(), "big", signed=True
        )


@dataclass(frozen=True, slots=True)
class QuarantineWrite:
    received_at: datetime
    reason: str  # "invalid", "signature", "too_large", "unsupported"
    errors: dict[str, str]
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    body_size: int  # size before truncation


WriteOp = CallWrite | QuarantineWrite


def call_key(account_sid: str, call_sid: str) -> int:
    """A compact signed 64-bit key for (AccountSid, CallSid); equal keys are compared in full."""
    digest = hashlib.blake2b(f"{account_sid}\x00{call_sid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def split_new_calls(ops: Sequence[WriteOp]) -> tuple[dict[tuple[str, str], int], list[int]]:
    """The first call write per (AccountSid, CallSid) of a batch, by identity, and the indexes
    of everything else (later writes of the same call, quarantine entries), in arrival order.

    The first ones take the bulk path that inserts every call not stored yet in one statement;
    the rest take the per-call path that tells retries from updates."""
    first: dict[tuple[str, str], int] = {}
    rest: list[int] = []
    for index, op in enumerate(ops):
        if not isinstance(op, CallWrite):
            rest.append(index)
            continue
        ident = (op.record.account_sid, op.record.call_sid)
        if ident in first:
            rest.append(index)
        else:
            first[ident] = index
    return first, rest


class Store(RollupReads):
    """Durable storage of calls, their history and quarantined requests.

    ``write_batch`` runs on the single writer thread and commits the whole batch in one
    transaction (group commit); everything else may run on any thread.
    """

    @abc.abstractmethod
    def rebuild_rollups(self) -> None:
        """Recompute repeat flags and rollups from the stored calls (writes wait meanwhile)."""

    @abc.abstractmethod
    def compact_rollups(self, until_ms: int) -> int:
        """Add the finished minutes before ``until_ms`` to the coarser rollup levels; return
        the new compacted_until."""

    @abc.abstractmethod
    def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]: ...

    quarantine_max_body_bytes: int  # each entry's stored body is cut to this

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""

    @abc.abstractmethod
    def upgrade(self, progress: Progress | None = None) -> list[str]:
        """Apply pending migrations (``progress`` is called before each); return the names
        applied."""

    @abc.abstractmethod
    def pending_migrations(self) -> list[str]:
        """The migrations not applied yet, in order."""

    @abc.abstractmethod
    def migration_status(self) -> list[MigrationState]: ...

    @abc.abstractmethod
    def iter_calls(
        self, batch_size: int = 1000, selection: CallSelection = EVERY_CALL
    ) -> Iterator[StoredCall]:
        """Every call (of ``selection``), oldest first by start time."""

    @abc.abstractmethod
    def get_call(self, account_sid: str, call_sid: str) -> StoredCall | None: ...

    @abc.abstractmethod
    def call_history(self, account_sid: str, call_sid: str) -> list[StoredCall]:
        """Earlier versions of a call, oldest first."""

    @abc.abstractmethod
    def count_calls(self, selection: CallSelection = EVERY_CALL) -> int: ...

    @abc.abstractmethod
    def list_quarantine(
        self, limit: int = 50, before_id: int | None = None
    ) -> list[QuarantineEntry]:
        """Newest first."""

    @abc.abstractmethod
    def get_quarantine(self, entry_id: int) -> QuarantineEntry | None: ...

    @abc.abstractmethod
    def delete_quarantine(self, entry_id: int) -> None:
        """Remove an entry that was replayed successfully (not counted as dropped)."""

    @abc.abstractmethod
    def quarantine_counts(self) -> tuple[int, int]:
        """(entries kept, entries dropped by the size cap or retention)."""

    @abc.abstractmethod
    def prune(self, cutoff: datetime) -> int:
        """Remove calls that started before ``prune_boundary(cutoff)`` (whole partitions where
        there are any); their rollups stay. Return how many calls went."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abc.abstractmethod
    def revoke_session(self, nonce: str, expires_at: datetime) -> None:
        """Record a logged-out session until it would have expired; drop expired records."""

    @abc.abstractmethod
    def session_revoked(self, nonce: str) -> bool: ...

    @abc.abstractmethod
    def alert_book(
        self, *, evaluation_round: bool = False, read_only: bool = False
    ) -> contextlib.AbstractContextManager[AlertBook | None]:
        """The alert tables in one short transaction. With ``evaluation_round`` it is the one
        round running across processes and hosts: None when another holds it (PostgreSQL);
        SQLite's BEGIN IMMEDIATE waits for the other instead, then sees what it stored.
        ``read_only`` (reads for the API, CLI and metrics) takes no write lock on SQLite."""
