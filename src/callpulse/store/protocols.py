"""What each user of the store calls, as small protocols: a user depends on its own few
methods, not on the whole store (``Store`` has them all); and what the shared SQL needs of a
driver's connection."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from callpulse.store.reads import CallFilter, Counters, Histograms, ListedCall, Segment
from callpulse.store.records import QuarantineEntry

if TYPE_CHECKING:
    from callpulse.store.alerts import AlertBook
    from callpulse.store.base import SaveResult, WriteOp


class AnalyticsReads(Protocol):
    """The typed questions of analytics (``store/reads.py``) and the quarantine's pages."""

    def rollups_compacted_until(self) -> int: ...

    def counters(self, segments: Sequence[Segment], f: CallFilter) -> Counters: ...

    def counters_by(
        self, segments: Sequence[Segment], f: CallFilter, key: str
    ) -> dict[str, Counters]: ...

    def counters_per_bucket(
        self, segments: Sequence[Segment], f: CallFilter, bucket_ms: int, *, busiest: bool = False
    ) -> dict[int, Counters]: ...

    def histograms(self, segments: Sequence[Segment], f: CallFilter) -> Histograms: ...

    def poor_per_number(
        self, segments: Sequence[Segment], f: CallFilter, limit_bin: float, numbers: Sequence[str]
    ) -> dict[str, int]: ...

    def call_page(
        self,
        start_ms: int,
        end_ms: int,
        f: CallFilter,
        *,
        status: str | None,
        with_problems: bool,
        before: tuple[int, int] | None,
        limit: int,
    ) -> list[ListedCall]: ...

    def find_call(self, call_sid: str, account_sid: str | None = None) -> ListedCall | None: ...

    def list_quarantine(
        self, limit: int = 50, before_id: int | None = None
    ) -> list[QuarantineEntry]: ...

    def quarantine_counts(self) -> tuple[int, int]: ...


class CallWriter(Protocol):
    """What the writer thread needs: batches written in one transaction each."""

    quarantine_max_body_bytes: int  # each entry's stored body is cut to this

    def write_batch(self, ops: Sequence[WriteOp]) -> list[SaveResult]: ...


class AlertTables(Protocol):
    def alert_book(
        self, *, evaluation_round: bool = False, read_only: bool = False
    ) -> contextlib.AbstractContextManager[AlertBook | None]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the shared SQL needs of a driver's connection (sqlite3 and psycopg alike)."""

    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Cursor: ...
