from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callpulse.callback import parse_callback
from callpulse.errors import CallpulseError
from callpulse.export import COLUMNS, iso_utc, write_calls, write_parquet
from callpulse.store.records import StoredCall
from tests.support import EXAMPLE_PAYLOAD

RECEIVED = datetime(2026, 11, 27, 10, 0, 1, 250000, tzinfo=UTC)
CALL = StoredCall(
    parse_callback({**EXAMPLE_PAYLOAD, "Direction": "inbound"}), RECEIVED, "callback", 1
)
EXPECTED = {
    "call_sid": "b3877c40-da60-4998-90ad-b792e98472ca",
    "account_sid": "b3877c40-da60-4998-90ad-b792e98472af",
    "from": "+15551234567",
    "region": "US",
    "to": "+18005559876",
    "started_at": "2024-04-04T18:32:15Z",
    "status": "completed",
    "duration_s": 142,
    "mos": 4.5,
    "received_at": "2026-11-27T10:00:01.250Z",
    "source": "callback",
    "extra": {"Direction": "inbound"},
    "problems": [],
}


def test_jsonl_has_one_exact_object_per_call() -> None:
    out = io.StringIO()
    assert len(list(write_calls([CALL, CALL], out, "jsonl"))) == 2
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [EXPECTED, EXPECTED]


def test_csv_has_the_same_columns() -> None:
    out = io.StringIO()
    list(write_calls([CALL], out, "csv"))
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert tuple(row) == COLUMNS
    assert row["started_at"] == "2024-04-04T18:32:15Z"
    assert json.loads(row["extra"]) == {"Direction": "inbound"}
    assert (row["duration_s"], row["mos"]) == ("142", "4.5")


def test_unknown_format_is_named() -> None:
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        write_calls([CALL], io.StringIO(), "xml")


def test_received_at_always_has_milliseconds_so_text_order_is_time_order() -> None:
    whole_second = StoredCall(CALL.record, datetime(2026, 1, 1, tzinfo=UTC), "callback", 1)
    out = io.StringIO()
    list(write_calls([whole_second], out, "jsonl"))
    assert json.loads(out.getvalue())["received_at"] == "2026-01-01T00:00:00.000Z"


def test_iso_utc() -> None:
    assert iso_utc(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05Z"
    assert iso_utc(RECEIVED) == "2026-11-27T10:00:01.250Z"


def test_parquet_has_typed_columns(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    no_mos = StoredCall(replace(CALL.record, mos=None), RECEIVED, "reconciled", 1)
    path = tmp_path / "calls.parquet"
    assert sum(write_parquet([CALL, no_mos], path)) == 2
    table = pq.read_table(path)
    assert table.column_names == list(COLUMNS)
    rows = table.to_pylist()
    assert rows[0]["started_at"] == datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)
    assert rows[0]["received_at"] == datetime(2026, 11, 27, 10, 0, 1, 250000, tzinfo=UTC)
    assert (rows[0]["duration_s"], rows[0]["mos"], rows[1]["mos"]) == (142, 4.5, None)
    assert json.loads(rows[0]["extra"]) == {"Direction": "inbound"}
    assert rows[1]["source"] == "reconciled"


def test_parquet_of_nothing_is_a_valid_empty_file(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "none.parquet"
    assert list(write_parquet([], path)) == []
    assert pq.read_table(path).num_rows == 0


def test_parquet_without_its_extra_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed: import fails
    with pytest.raises(CallpulseError, match=r"pip install 'callpulse\[parquet\]'"):
        list(write_parquet([CALL], tmp_path / "calls.parquet"))
    assert not (tmp_path / "calls.parquet").exists()
