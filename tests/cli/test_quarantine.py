"""`callpulse quarantine list` in an 80-column terminal: nothing wider, no word cut."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from callpulse.cli import cli
from callpulse.cli.quarantine import MAX_ERRORS
from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.store.base import QuarantineWrite

ERRORS = {
    "X-SignalWire-Signature": "does not match: check CALLPULSE_SIGNING_KEYS against the "
    "project's Signing Key and CALLPULSE_PUBLIC_URL against the URL the sender calls",
    "CallSid": "must be 1-64 letters, digits, '-' or '_'",
}


def test_the_list_fits_80_columns_without_cutting_words(tmp_path: Path) -> None:
    database = tmp_path / "calls.db"
    entry = QuarantineWrite(datetime(2026, 12, 3, 6, 13, 19, 150000, tzinfo=UTC), "signature",
                            ERRORS, "POST", "http://h/cb", {}, b"x" * 12345, 12345)  # fmt: skip
    with open_store(Settings(database_url=f"sqlite:///{database}")) as store:
        store.upgrade()
        store.write_batch([entry] * 3)
    result = CliRunner().invoke(
        cli, ["quarantine", "list", "--database", str(database)], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80, result.output
    cells = " ".join(
        line.split("│")[4].strip() for line in lines if line.count("│") == 6
    )  # the errors column of every row, lines joined again
    words = re.findall(r"\S+", cells)
    expected = "; ".join(f"{k}: {v}" for k, v in ERRORS.items()).split()
    # Whole words from the start, shortened at a word with an ellipsis to mark it.
    per_row = len(words) // 3
    first_row = words[:per_row]
    assert first_row[-1] == "…"
    assert first_row[:-1] == expected[: per_row - 1]
    assert len(" ".join(first_row)) <= MAX_ERRORS
    for needle in ("2026-12-03 06:13:19", "signature", "12,345", "3 kept"):
        assert needle in result.output
