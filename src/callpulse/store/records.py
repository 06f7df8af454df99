"""What the store hands back (stored calls, quarantine entries, migration states) and which
calls an export or prune takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callpulse.callback import CallRecord
from callpulse.store.dialect import Dialect, to_epoch_ms
from callpulse.store.problems import problems_from_json
from callpulse.store.reads import equal_conditions


@dataclass(frozen=True, slots=True)
class StoredCall:
    record: CallRecord
    received_at: datetime
    source: str
    version: int


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: int
    received_at: datetime
    reason: str
    errors: dict[str, str]
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    body_size: int


@dataclass(frozen=True, slots=True)
class MigrationState:
    name: str
    applied_at: datetime | None


def prune_boundary(cutoff: datetime) -> datetime:
    """Pruning goes by whole UTC days, so no rollup bucket holds both kept and pruned calls."""
    return cutoff.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class CallSelection:
    """Which calls an export takes: a range of start times (until exclusive) and exact
    matches, each optional; the default is every call."""

    since: datetime | None = None
    until: datetime | None = None
    account_sid: str | None = None
    to: str | None = None
    region: str | None = None

    def where(self, dialect: Dialect) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or nothing) over the calls table's columns, and its parameters."""
        conditions: list[str] = []
        params: list[Any] = []
        for column, op, moment in (
            ("started_at", ">=", self.since),
            ("started_at", "<", self.until),
        ):
            if moment is not None:
                conditions.append(f"{column} {op} {dialect.ms_param}")
                params.append(to_epoch_ms(moment))
        equal, values = equal_conditions(
            dialect,
            [("account_sid", self.account_sid), ("to_number", self.to), ("region", self.region)],
        )
        conditions += equal
        params += values
        return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


EVERY_CALL = CallSelection()


def stored_call_from_row(
    account_sid: str,
    call_sid: str,
    row: Sequence[Any],
    dialect: Dialect,
) -> StoredCall:
    """A row of (from, to, started_at, status, duration_s, mos, extra, received_at, source,
    version, problems) as a StoredCall; the dialect decodes its times and JSON."""
    (from_number, to_number, started_at, status, duration_s, mos, extra, received_at, source,
     version, problems) = row  # fmt: skip
    record = CallRecord(
        account_sid=account_sid,
        call_sid=call_sid,
        from_number=from_number,
        to_number=to_number,
        started_at=dialect.decode_time(started_at),
        status=status,
        duration_s=duration_s,
        mos=mos,
        extra=dialect.decode_json(extra),
        problems=problems_from_json(problems),
    )
    return StoredCall(record, dialect.decode_time(received_at), source, version)


def quarantine_entry_from_row(
    row: Sequence[Any],
    dialect: Dialect,
) -> QuarantineEntry:
    """A row of (id, received_at, reason, errors, method, url, headers, body, body_size)."""
    entry_id, received_at, reason, errors, method, url, headers, body, body_size = row
    return QuarantineEntry(
        id=entry_id,
        received_at=dialect.decode_time(received_at),
        reason=reason,
        errors=dialect.decode_json(errors),
        method=method,
        url=url,
        headers=dialect.decode_json(headers),
        body=bytes(body),
        body_size=body_size,
    )
