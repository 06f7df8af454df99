"""Quarantine entries: the one place that turns a rejected request or a refused call into one.

A rejected request is kept as it arrived (credentials redacted, the body cut to the gate's
limit), so it can be inspected and replayed. A call the database refuses never reaches it as a
request of its own (the writer may even be draining the spool): its entry is made from the call
itself, its fields as the form a replay reads, with the database's own words as the reason.
"""

from __future__ import annotations

from urllib.parse import urlencode

from callpulse.callback import to_fields
from callpulse.ingest.gate import RawCallback, Rejected
from callpulse.store.base import CallWrite, QuarantineWrite
from callpulse.store.records import QuarantineEntry

REFUSED = "refused"  # the reason of a call the database cannot hold
_REDACTED_HEADERS = frozenset({"authorization", "cookie"})
_FORM = "application/x-www-form-urlencoded"


def rejected(raw: RawCallback, rejection: Rejected, max_body_bytes: int) -> QuarantineWrite:
    """The request as it arrived, with why the gate refused it."""
    return QuarantineWrite(
        received_at=raw.received_at,
        reason=rejection.reason,
        errors=rejection.errors,
        method=raw.method,
        url=raw.url,
        headers={
            k: ("<redacted>" if k in _REDACTED_HEADERS else v) for k, v in raw.headers.items()
        },
        body=raw.body[:max_body_bytes],
        body_size=raw.body_size,
    )


def refused(write: CallWrite, cause: Exception, *, by_database: bool = True) -> QuarantineWrite:
    """A call the store could not take: ``by_database`` when the database (or its driver)
    refused a value, else a failure of the writer itself while nobody waited (the spool)."""
    # A value the database cannot take may not even encode: shown escaped, never raised.
    body = urlencode(to_fields(write.record), errors="backslashreplace").encode()
    return QuarantineWrite(
        received_at=write.received_at,
        reason=REFUSED,
        errors={"database": str(cause)} if by_database else {"writer": f"internal error: {cause}"},
        method="POST",
        url="",
        headers={"content-type": _FORM},
        body=body,
        body_size=len(body),
    )


def raw_from_quarantine(entry: QuarantineEntry) -> RawCallback:
    """What ``quarantine replay`` runs through the gate again."""
    return RawCallback(
        method=entry.method,
        url=entry.url,
        headers=entry.headers,
        body=entry.body,
        body_size=entry.body_size,
        received_at=entry.received_at,
    )
