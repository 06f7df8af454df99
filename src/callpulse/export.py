"""Calls as JSON Lines, CSV or Parquet, one record per call with stable keys."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from callpulse.errors import CallpulseError
from callpulse.regions import region_of
from callpulse.store.problems import problems_to_json
from callpulse.store.records import StoredCall

COLUMNS = (
    "call_sid",
    "account_sid",
    "from",
    "region",
    "to",
    "started_at",
    "status",
    "duration_s",
    "mos",
    "received_at",
    "source",
    "extra",
    "problems",
)
TEXT_FORMATS = ("jsonl", "csv")
FORMATS = (*TEXT_FORMATS, "parquet")
PARQUET_BATCH = 10_000


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
        "region": region_of(r.from_number),  # as the figures count it
        "to": r.to_number,
        "started_at": iso_utc(r.started_at),
        "status": r.status,
        "duration_s": r.duration_s,
        "mos": r.mos,
        "received_at": iso_utc(call.received_at, "milliseconds"),  # sorts as text
        "source": call.source,
        "extra": r.extra,
        "problems": [p.as_dict() for p in r.problems],
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
        row["problems"] = json.dumps(row["problems"], ensure_ascii=False)
        writer.writerow(row)
        yield None


def write_calls(calls: Iterable[StoredCall], out: IO[str], fmt: str) -> Iterator[None]:
    """Write calls in a text ``fmt``; yields once per call written, so callers can show
    progress."""
    if fmt == "jsonl":
        return _jsonl(calls, out)
    if fmt == "csv":
        return _csv(calls, out)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(TEXT_FORMATS)}")


def write_parquet(calls: Iterable[StoredCall], path: Path) -> Iterator[int]:
    """Write calls to a Parquet file in row groups; yields the number of calls each one held.

    Times are UTC timestamps (milliseconds), ``extra`` and ``problems`` JSON strings,
    ``duration_s`` and ``mos`` nullable."""
    try:  # a large import, needed only here: an extra
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise CallpulseError(
            "Parquet export needs pyarrow: pip install 'callpulse[parquet]'"
        ) from None

    timestamp = pa.timestamp("ms", tz="UTC")
    schema = pa.schema(
        [
            ("call_sid", pa.string()),
            ("account_sid", pa.string()),
            ("from", pa.string()),
            ("region", pa.string()),
            ("to", pa.string()),
            ("started_at", timestamp),
            ("status", pa.string()),
            ("duration_s", pa.int32()),
            ("mos", pa.float64()),
            ("received_at", timestamp),
            ("source", pa.string()),
            ("extra", pa.string()),
            ("problems", pa.string()),
        ]
    )

    def batch(rows: list[StoredCall]) -> Any:
        columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        for call in rows:
            r = call.record
            values = (r.call_sid, r.account_sid, r.from_number, region_of(r.from_number),
                      r.to_number, r.started_at,
                      r.status, r.duration_s, r.mos, call.received_at, call.source,
                      json.dumps(r.extra, sort_keys=True, ensure_ascii=False),
                      problems_to_json(r.problems))  # fmt: skip
            for name, value in zip(schema.names, values, strict=True):
                columns[name].append(value)
        return pa.record_batch([pa.array(columns[n], schema.field(n).type) for n in schema.names],
                               schema=schema)  # fmt: skip

    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        pending: list[StoredCall] = []
        for call in calls:
            pending.append(call)
            if len(pending) == PARQUET_BATCH:
                writer.write_batch(batch(pending))
                yield len(pending)
                pending = []
        if pending:
            writer.write_batch(batch(pending))
            yield len(pending)
