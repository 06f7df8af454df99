"""`callpulse report` figures as the dashboard shows them: MOS change in points of score,
counts with thousands separators."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from click.testing import CliRunner

from callpulse.callback import parse_callback
from callpulse.cli import cli
from callpulse.cli.report import _change
from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.store.base import CallWrite
from tests.support import callback_fields

DAY = datetime(2024, 4, 4, tzinfo=UTC)


def test_changes_by_kind() -> None:
    assert _change(4.50, 4.48, "mos") == "+0.02"
    assert _change(4.00, 4.25, "mos") == "-0.25"
    assert _change(0.95, 0.90, "rate") == "+5.0 pt"
    assert _change(120.0, 100.0) == "+20%"
    assert _change(None, 4.0, "mos") == ""


def test_report_shows_the_mos_change_and_separated_counts(tmp_path: Path) -> None:
    database = tmp_path / "calls.db"
    calls = [  # 1,200 calls today at MOS 4.50, 10 the day before at 4.48
        callback_fields(Timestamp=format_datetime(DAY + timedelta(seconds=30 * n)),
                        AudioInMos="4.50", To="+18005550100")
        for n in range(1200)
    ] + [
        callback_fields(Timestamp=format_datetime(DAY - timedelta(hours=n + 1)), AudioInMos="4.48")
        for n in range(10)
    ]  # fmt: skip
    with open_store(Settings(database_url=f"sqlite:///{database}")) as store:
        store.upgrade()
        store.write_batch([CallWrite(parse_callback(f), DAY) for f in calls])
    result = CliRunner().invoke(
        cli,
        ["report", "--database", str(database), "--since", "2024-04-04", "--until", "2024-04-05"],
        env={"COLUMNS": "120"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines()
        )
        if cells
    }
    assert rows["MOS mean"] == ["4.50", "4.48", "+0.02"]
    assert rows["calls"] == ["1,200", "10", "+11,900%"]
    assert rows["+18005550100"][0] == "1,200"
