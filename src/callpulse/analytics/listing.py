"""Calls and quarantine entries page by page, newest first, with opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC

from callpulse.analytics.models import CallItem, CallPage, Filters, QuarantineItem, QuarantinePage
from callpulse.analytics.queries import call_filter
from callpulse.store.protocols import AnalyticsReads
from callpulse.store.reads import ListedCall


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


def _item(call: ListedCall) -> CallItem:
    return CallItem.model_validate(
        {
            "account_sid": call.account_sid,
            "call_sid": call.call_sid,
            "from": call.from_number,
            "to": call.to_number,
            "region": call.region,
            "started_at": call.started_at,
            "status": call.status,
            "duration_s": call.duration_s,
            "mos": call.mos,
            "received_at": call.received_at,
            "source": call.source,
            "version": call.version,
            "problems": [p.as_dict() for p in call.problems],
        }
    )


def list_calls(
    store: AnalyticsReads,
    start_ms: int,
    end_ms: int,
    filters: Filters,
    *,
    status: str | None,
    cursor: str | None,
    limit: int,
    with_problems: bool = False,
) -> CallPage:
    before = None
    if cursor is not None:
        before_ms, before_id = _decode(cursor, 2)
        before = (before_ms, before_id)
    calls = store.call_page(
        start_ms, end_ms, call_filter(filters),
        status=status, with_problems=with_problems, before=before, limit=limit + 1,
    )  # fmt: skip
    page = calls[:limit]
    next_cursor = _encode(list(page[-1].position)) if len(calls) > limit else None
    return CallPage(calls=[_item(call) for call in page], next_cursor=next_cursor)


def find_call(
    store: AnalyticsReads, call_sid: str, account_sid: str | None = None
) -> CallItem | None:
    """One call by CallSid (in any account unless one is given)."""
    call = store.find_call(call_sid, account_sid)
    return None if call is None else _item(call)


def list_quarantine(store: AnalyticsReads, *, cursor: str | None, limit: int) -> QuarantinePage:
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
