"""Calls and quarantine entries page by page, newest first, with opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC
from typing import Any

from callpulse.analytics.models import CallItem, CallPage, Filters, QuarantineItem, QuarantinePage
from callpulse.store import Store
from callpulse.store.base import call_key, from_epoch_ms, problems_from_json


class BadCursor(ValueError):
    """A cursor this server did not hand out."""


# Cursor values are row ids and epoch milliseconds: the database's signed 64-bit integers.
_INT64 = range(-(2**63), 2**63)


def _encode(values: list[int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str, length: int) -> list[int]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("cursor is not one this API returned; start again without it") from None
    if not (
        isinstance(values, list)
        and len(values) == length
        and all(isinstance(v, int) and not isinstance(v, bool) and v in _INT64 for v in values)
    ):
        raise BadCursor("cursor is not one this API returned; start again without it")
    return values


def _call_columns(store: Store) -> str:
    d = store.dialect
    return (
        f"c.account_sid, c.call_sid, c.from_number, c.to_number, c.region, "
        f"{d.ms('c.started_at')}, c.status, c.duration_s, c.mos, {d.ms('c.received_at')}, "
        f"c.source, c.version, c.problems, c.{d.row_id}"
    )


def _item(row: Any) -> CallItem:
    (account_sid, call_sid, from_number, to_number, region, started_ms, status, duration_s, mos,
     received_ms, source, version, problems, _row_id) = row  # fmt: skip
    return CallItem.model_validate(
        {
            "account_sid": account_sid,
            "call_sid": call_sid,
            "from": from_number,
            "to": to_number,
            "region": region,
            "started_at": from_epoch_ms(int(started_ms)),
            "status": status,
            "duration_s": duration_s,
            "mos": mos,
            "received_at": from_epoch_ms(int(received_ms)),
            "source": source,
            "version": version,
            "problems": [p.as_dict() for p in problems_from_json(problems)],
        }
    )


def list_calls(
    store: Store,
    start_ms: int,
    end_ms: int,
    filters: Filters,
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
    with_problems: bool = False,
) -> CallPage:
    d = store.dialect
    p = d.param
    conditions = [f"started_at >= {d.ms_param}", f"started_at < {d.ms_param}"]
    params: list[Any] = [start_ms, end_ms]
    for column, value in (
        ("account_sid", filters.account_sid),
        ("to_number", filters.to),
        ("region", filters.region),
        ("from_number", filters.caller),
        ("status", status),
    ):
        if value is not None:
            conditions.append(f"{column} = {p}")
            params.append(value)
    if with_problems:
        conditions.append("problems <> '[]'")
    if cursor is not None:
        before_ms, before_id = _decode(cursor, 2)
        conditions.append(
            f"(started_at < {d.ms_param} OR (started_at = {d.ms_param} AND {d.row_id} < {p}))"
        )
        params += [before_ms, before_ms, before_id]
    rows = store.read(
        f"SELECT {_call_columns(store)} FROM calls c WHERE {' AND '.join(conditions)} "
        f"ORDER BY started_at DESC, {d.row_id} DESC LIMIT {p}",
        [*params, limit + 1],
    )
    page = rows[:limit]
    next_cursor = _encode([int(page[-1][5]), int(page[-1][-1])]) if len(rows) > limit else None
    return CallPage(calls=[_item(row) for row in page], next_cursor=next_cursor)


def find_call(store: Store, call_sid: str, account_sid: str | None = None) -> CallItem | None:
    """One call by CallSid; without an account, every account with rollups is tried (few), so
    the lookup still goes through the (account, call) key index."""
    accounts = (
        [account_sid]
        if account_sid is not None
        else [a for (a,) in store.read("SELECT DISTINCT account_sid FROM rollup_day")]
    )
    p = store.dialect.param
    if store.dialect.name == "sqlite":
        lookup = f"FROM calls c WHERE c.call_key = {p} AND c.account_sid = {p} AND c.call_sid = {p}"
    else:  # call_keys knows where (which partition, start) a call lives
        lookup = (
            "FROM calls c JOIN call_keys k USING (account_sid, call_id) "
            f"WHERE k.account_sid = {p} AND k.call_sid = {p} AND c.started_at = k.started_at"
        )
    for account in accounts:
        params: list[Any] = [account, call_sid]
        if store.dialect.name == "sqlite":
            params.insert(0, call_key(account, call_sid))
        rows = store.read(f"SELECT {_call_columns(store)} {lookup}", params)
        if rows:
            return _item(rows[0])
    return None


def list_quarantine(store: Store, *, cursor: str | None, limit: int) -> QuarantinePage:
    before_id = _decode(cursor, 1)[0] if cursor is not None else None
    entries = store.list_quarantine(limit=limit + 1, before_id=before_id)
    kept, dropped = store.quarantine_counts()
    page = entries[:limit]
    return QuarantinePage(
        entries=[
            QuarantineItem(
                id=e.id,
                received_at=e.received_at.astimezone(UTC),
                reason=e.reason,
                errors=e.errors,
                method=e.method,
                url=e.url,
                body_size=e.body_size,
                body=e.body.decode("utf-8", errors="replace"),
            )
            for e in page
        ],
        kept=kept,
        dropped=dropped,
        next_cursor=_encode([page[-1].id]) if len(entries) > limit else None,
    )
