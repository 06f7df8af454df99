"""Calls as JSON Lines or CSV, one object per call with stable keys."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from callpulse.store.base import StoredCall

COLUMNS = (
    "call_sid",
    "account_sid",
    "from",
    "to",
    "started_at",
    "status",
    "duration_s",
    "mos",
    "received_at",
    "source",
    "extra",
)
FORMATS = ("jsonl", "csv")


def iso_utc(moment: datetime, timespec: str = "auto") -> str:
    """ISO 8601 in UTC with 'Z'; "auto" shows milliseconds only when there are any."""
    if timespec == "auto":
        timespec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


def call_to_row(call: StoredCall) -> dict[str, Any]:
    r = call.record
    return {
        "call_sid": r.call_sid,
        "account_sid": r.account_sid,
        "from": r.from_number,
        "to": r.to_number,
        "started_at": iso_utc(r.started_at),
        "status": r.status,
        "duration_s": r.duration_s,
        "mos": r.mos,
        "received_at": iso_utc(call.received_at, "milliseconds"),  # sorts as text
        "source": call.source,
        "extra": r.extra,
    }


def _jsonl(calls: Iterable[StoredCall], out: IO[str]) -> Iterator[None]:
    for call in calls:
        out.write(json.dumps(call_to_row(call), ensure_ascii=False) + "\n")
        yield None


def _csv(calls: Iterable[StoredCall], out: IO[str]) -> Iterator[None]:
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    for call in calls:
        row = call_to_row(call)
        row["extra"] = json.dumps(row["extra"], sort_keys=True, ensure_ascii=False)
        writer.writerow(row)
        yield None


def write_calls(calls: Iterable[StoredCall], out: IO[str], fmt: str) -> Iterator[None]:
    """Write calls in ``fmt``; yields once per call written, so callers can show progress."""
    if fmt == "jsonl":
        return _jsonl(calls, out)
    if fmt == "csv":
        return _csv(calls, out)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
