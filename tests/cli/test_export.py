"""`callpulse export` of a period and filters, with the caller's region."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from callpulse.callback import parse_callback
from callpulse.cli import cli
from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.store.base import CallWrite
from tests.support import callback_fields, run_cli
from tests.test_cli import assert_one_line_error, cli_env

CALLS = {
    "gb-april": callback_fields(Timestamp="Thu, 04 Apr 2024 10:00:00 +0000", From="+442079460000"),
    "us-april": callback_fields(Timestamp="Thu, 04 Apr 2024 12:00:00 +0000", To="+18005550199"),
    "us-march": callback_fields(Timestamp="Mon, 04 Mar 2024 12:00:00 +0000", AccountSid="AC-two"),
}
SIDS = {fields["CallSid"]: name for name, fields in CALLS.items()}


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "calls.db"
    with open_store(Settings(database_url=f"sqlite:///{path}")) as store:
        store.upgrade()
        store.write_batch([CallWrite(parse_callback(f), datetime.now(UTC)) for f in CALLS.values()])
    return path


def exported(database: Path, *args: str) -> list[dict[str, str]]:
    result = CliRunner().invoke(
        cli, ["export", "--database", str(database), "--format", "csv", *args],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ((), ["us-march", "gb-april", "us-april"]),  # everything, oldest first
        (("--since", "2024-04-01"), ["gb-april", "us-april"]),
        (("--until", "2024-04-04T12:00:00Z"), ["us-march", "gb-april"]),
        (
            ("--since", "2024-04-04T11:00:00+02:00", "--until", "2024-04-05"),
            ["gb-april", "us-april"],
        ),
        (("--region", "gb"), ["gb-april"]),
        (("--region", "US", "--since", "2024-04-01"), ["us-april"]),
        (("--number", "+18005550199"), ["us-april"]),
        (("--account", "AC-two"), ["us-march"]),
        (("--since", "1d"), []),  # nothing this recent
    ],
)
def test_export_of_a_period_and_filters(
    database: Path, args: tuple[str, ...], names: list[str]
) -> None:
    rows = exported(database, *args)
    assert [SIDS[row["call_sid"]] for row in rows] == names


def test_every_row_names_the_callers_region(database: Path) -> None:
    regions = {SIDS[row["call_sid"]]: row["region"] for row in exported(database)}
    assert regions == {"gb-april": "GB", "us-april": "US", "us-march": "US"}
    result = CliRunner().invoke(cli, ["export", "--database", str(database)])
    assert {json.loads(line)["region"] for line in result.output.splitlines()} == {"GB", "US"}


def test_parquet_of_a_selection(database: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    target = tmp_path / "gb.parquet"
    result = CliRunner().invoke(cli, ["export", "--database", str(database), "--format",
                                      "parquet", "-o", str(target), "--region", "GB"])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pq.read_table(target)
    assert table.column("region").to_pylist() == ["GB"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--region", "Britain"), "--region"),
        (("--number", "0800 FLOWERS"), "--number"),
        (("--account", "a b"), "--account"),
        (("--since", "2024-04-05", "--until", "2024-04-04"), "--since"),
        (("--until", "soon"), "--until"),
    ],
)
def test_bad_options_are_one_line_naming_them(
    database: Path, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    result = run_cli("export", "--database", str(database), *args, env=cli_env(tmp_path),
                     check=False)  # fmt: skip
    assert_one_line_error(result, needle)


def test_help_says_only_parquet_needs_output() -> None:
    text = CliRunner().invoke(cli, ["export", "--help"], terminal_width=200).output
    assert "(needs --output)" not in text
    assert "Parquet needs one" in text
