"""The `callpulse` command: documented, helpful, and every error one line without a traceback."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from callpulse.cli import cli
from tests.support import ServerProcess, callback_fields, run_cli, until

README = Path(__file__).resolve().parents[1] / "README.md"


def command_paths(
    group: click.Group = cli, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every command and group under ``group``, as the words typed after `callpulse`."""
    ctx = click.Context(group, info_name="callpulse")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = (*prefix, name)
        yield path
        if isinstance(command, click.Group):
            yield from command_paths(command, path)


COMMANDS = list(command_paths())


def cli_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The process environment without any CALLPULSE_* setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPULSE_")}
    env["CALLPULSE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    env["CALLPULSE_SPOOL_DIR"] = str(tmp_path / "spool")
    env.update(settings)
    return env


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- documentation and help -----------------------------------------------------------------------


def test_the_command_tree_is_walked() -> None:
    assert ("serve",) in COMMANDS
    assert ("quarantine", "show") in COMMANDS
    assert ("db", "status") in COMMANDS


def test_every_command_is_in_the_readme() -> None:
    assert README.is_file(), f"{README} is missing"
    text = README.read_text(encoding="utf-8")
    missing = [
        "callpulse " + " ".join(path)
        for path in COMMANDS
        if not re.search(r"callpulse\s+" + r"\s+".join(map(re.escape, path)) + r"(?![\w-])", text)
    ]
    assert not missing, f"README.md does not mention: {', '.join(missing)}"


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "callpulse")
def test_help_works_for_every_command(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="callpulse")
    assert result.exit_code == 0, result.output
    assert result.exception is None
    usage = " ".join(("callpulse", *path))
    assert f"Usage: {usage}" in result.output
    summary = result.output.split("\n\n")[1].strip()
    assert summary, f"`{usage} --help` has no description"


def test_help_in_a_real_process() -> None:
    result = run_cli("--help")
    for path in COMMANDS:
        if len(path) == 1:
            assert path[0] in result.stdout
    assert run_cli("db", "status", "--help").stdout.startswith("Usage: callpulse db status")


# -- errors: one line, non-zero, no traceback -----------------------------------------------------


def test_unknown_quarantine_entry(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    run_cli("db", "upgrade", env=env, cwd=tmp_path)
    result = run_cli("quarantine", "show", "424242", env=env, cwd=tmp_path, check=False)
    assert_one_line_error(result, "424242")
    assert result.stdout == ""


@pytest.mark.parametrize(
    "url", ["nosuchdb://somewhere/calls", "sqlite:///{tmp}", "sqlite:///{tmp}/not-a-db.txt"]
)
def test_bad_database_url(tmp_path: Path, url: str) -> None:
    (tmp_path / "not-a-db.txt").write_text("this is not an SQLite database\n" * 100)
    env = cli_env(tmp_path, CALLPULSE_DATABASE_URL=url.format(tmp=tmp_path))
    for command in (["export"], ["db", "status"]):
        result = run_cli(*command, env=env, cwd=tmp_path, check=False)
        line = assert_one_line_error(result)
        if url.startswith("nosuchdb"):
            assert "CALLPULSE_DATABASE_URL" in line


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", "Connection refused"),
        ("postgresql://postgres@127.0.0.1:5432/callpulse_no_such_db", "does not exist"),
    ],
)
def test_unreachable_postgres_is_one_line_with_the_reason(
    tmp_path: Path, url: str, reason: str
) -> None:
    env = cli_env(tmp_path, CALLPULSE_DATABASE_URL=url, CALLPULSE_SIGNING_KEYS="k")
    for command in (["db", "status"], ["serve", "--port", "1"]):
        result = run_cli(*command, env=env, cwd=tmp_path, check=False)
        assert reason in assert_one_line_error(result, "PostgreSQL")


@pytest.mark.parametrize("value", ["64KiB", "0", "-5", ""])
def test_bad_max_body_bytes_names_the_setting(tmp_path: Path, value: str) -> None:
    env = cli_env(tmp_path, CALLPULSE_MAX_BODY_BYTES=value)
    result = run_cli("export", env=env, cwd=tmp_path, check=False)
    assert_one_line_error(result, "CALLPULSE_MAX_BODY_BYTES")


def test_bad_max_body_bytes_stops_serve(tmp_path: Path) -> None:
    env = cli_env(tmp_path, CALLPULSE_MAX_BODY_BYTES="lots", CALLPULSE_SIGNING_KEYS="k")
    result = run_cli("serve", "--port", "1", env=env, cwd=tmp_path, check=False)
    assert_one_line_error(result, "CALLPULSE_MAX_BODY_BYTES")


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "callpulse.toml"
    result = run_cli(
        "--config", str(missing), "db", "status", cwd=tmp_path, check=False, env=cli_env(tmp_path)
    )
    assert_one_line_error(result, str(missing))
    env = cli_env(tmp_path, CALLPULSE_CONFIG=str(missing))
    assert_one_line_error(run_cli("export", env=env, cwd=tmp_path, check=False), str(missing))


def test_bad_config_file(tmp_path: Path) -> None:
    config = tmp_path / "callpulse.toml"
    config.write_text('database_url = "sqlite:///x.db"\nmax_body_bytes = "huge"\n')
    result = run_cli("--config", str(config), "export", env=cli_env(tmp_path), check=False)
    assert_one_line_error(result, "max_body_bytes")
    config.write_text("database_url = \n")
    result = run_cli("--config", str(config), "export", env=cli_env(tmp_path), check=False)
    assert_one_line_error(result, str(config))


@pytest.mark.parametrize(
    "args",
    [("no-such-command",), ("quarantine", "show", "twelve"), ("export", "--format", "xml")],
    ids=["unknown command", "bad argument", "bad choice"],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_cli(*args, env=cli_env(tmp_path), cwd=tmp_path, check=False)
    assert_one_line_error(result)


# -- db -------------------------------------------------------------------------------------------


def test_db_status_before_and_after_upgrade(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    missing = run_cli("db", "status", env=env, cwd=tmp_path, check=False)
    assert_one_line_error(missing, str(tmp_path / "cli.db"), "callpulse db upgrade")
    assert not (tmp_path / "cli.db").exists()
    (tmp_path / "cli.db").touch()  # an empty SQLite database: every migration pending
    header, *before = run_cli("db", "status", env=env, cwd=tmp_path).stdout.splitlines()
    assert header == f"database sqlite:///{tmp_path / 'cli.db'}"
    assert before, "db status lists no migration"
    names = [line.split()[0] for line in before]
    assert all(line.split()[-1] == "pending" for line in before), before

    upgraded = run_cli("db", "upgrade", env=env, cwd=tmp_path).stdout.splitlines()
    assert upgraded == [f"applied {name}" for name in names]

    after = run_cli("db", "status", env=env, cwd=tmp_path).stdout.splitlines()[1:]
    assert [line.split()[0] for line in after] == names
    for line in after:
        applied_at = line.split()[-1]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", applied_at), line

    again = run_cli("db", "upgrade", env=env, cwd=tmp_path).stdout.strip()
    assert again == "schema is up to date"
    assert run_cli("db", "status", env=env, cwd=tmp_path).stdout.splitlines()[1:] == after


# -- quarantine -----------------------------------------------------------------------------------


def test_quarantine_list_and_show(server: ServerProcess) -> None:
    assert server.cli("quarantine", "list", "--json").stdout == ""

    unsigned = callback_fields()
    assert (
        server.post(
            unsigned, key="PSKwrong", headers={"Authorization": "Bearer s3cret"}
        ).status_code
        == 403
    )
    invalid = callback_fields(CallSid="12 345")
    assert server.post(invalid).status_code == 400

    listed = until(
        lambda: [
            json.loads(line)
            for line in server.cli("quarantine", "list", "--json").stdout.splitlines()
        ],
        lambda entries: len(entries) >= 2,  # stored just after the answers
    )
    assert [e["reason"] for e in listed] == ["invalid", "signature"]  # newest first
    assert listed[0]["id"] > listed[1]["id"]
    for entry in listed:
        assert set(entry) >= {"id", "received_at", "reason", "errors", "method", "url", "body_size"}
        assert entry["method"] == "POST"
        assert entry["url"] == server.callback_url
    assert set(listed[0]["errors"]) == {"CallSid"}
    one = server.cli("quarantine", "list", "--json", "--limit", "1").stdout.splitlines()
    assert [json.loads(line)["id"] for line in one] == [listed[0]["id"]]

    shown = json.loads(server.cli("quarantine", "show", str(listed[1]["id"])).stdout)
    assert shown["reason"] == "signature"
    assert shown["headers"]["authorization"] == "<redacted>"
    assert "s3cret" not in json.dumps(shown)
    assert "x-signalwire-signature" in shown["headers"]
    assert (
        dict(pair.split("=", 1) for pair in shown["body"].split("&"))["CallSid"]
        == (unsigned["CallSid"])
    )
    assert shown["truncated"] is False
    assert shown["body_size"] == len(shown["body"].encode())

    table = server.cli("quarantine", "list").stdout
    assert "2 kept" in table
    assert str(listed[0]["id"]) in table


@pytest.mark.parametrize("port", ["99999", "65536", "-1"])
def test_serve_refuses_an_impossible_port(tmp_path: Path, port: str) -> None:
    env = cli_env(tmp_path, CALLPULSE_SIGNING_KEYS="PSKk")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "callpulse", "serve", "--port", port],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=8,
        )
    except subprocess.TimeoutExpired:  # run() has killed it
        pytest.fail(f"`callpulse serve --port {port}` hangs instead of failing")
    assert_one_line_error(result, port)


def test_export_to_a_file_matches_standard_output(server: ServerProcess) -> None:
    calls = [callback_fields(CallerName='Zoë, "the" caller'), callback_fields(From="anonymous")]
    for fields in calls:
        assert server.post(fields).json() == {"result": "inserted"}
    for fmt in ("jsonl", "csv"):
        target = server.workdir / f"calls.{fmt}"
        server.cli("export", "--format", fmt, "--output", str(target))
        stdout = server.cli("export", "--format", fmt).stdout
        assert target.read_text(encoding="utf-8") == stdout
    lines = (server.workdir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["call_sid"] for line in lines) == sorted(
        f["CallSid"] for f in calls
    )
    with (server.workdir / "calls.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    extras = {row["call_sid"]: json.loads(row["extra"]) for row in rows}
    assert extras[calls[0]["CallSid"]] == {"CallerName": 'Zoë, "the" caller'}
    assert {row["from"] for row in rows} == {"+15551234567", "withheld"}
    parquet = server.workdir / "calls.parquet"
    server.cli("export", "--format", "parquet", "--output", str(parquet))
    import pyarrow.parquet as pq

    assert sorted(pq.read_table(parquet).column("call_sid").to_pylist()) == sorted(
        f["CallSid"] for f in calls
    )
    assert_one_line_error(server.cli("export", "--format", "parquet", check=False), "--output")


def test_report_counts_what_was_received(server: ServerProcess) -> None:
    sent = [
        callback_fields(Timestamp="Thu, 04 Apr 2024 18:32:15 +0000", CallStatus="completed"),
        callback_fields(
            Timestamp="Thu, 04 Apr 2024 18:40:00 +0000", CallStatus="failed", CallDuration="0"
        ),
        callback_fields(
            Timestamp="Thu, 04 Apr 2024 19:05:00 +0000", AudioInMos="3.1", To="+18005550199"
        ),
        callback_fields(Timestamp="Wed, 03 Apr 2024 19:05:00 +0000"),  # the day before
    ]
    for fields in sent:
        assert server.post(fields).status_code == 200
    span = ("--since", "2024-04-04T00:00:00Z", "--until", "2024-04-05T00:00:00Z")
    report = json.loads(server.cli("report", *span, "--json").stdout)
    summary = report["summary"]
    assert (summary["calls"], summary["completed"], summary["failed"]) == (3, 2, 1)
    assert summary["success_rate"] == pytest.approx(2 / 3)
    assert summary["mos"]["mean"] == pytest.approx((4.5 + 3.1) / 2)
    assert summary["previous"]["calls"] == 1
    assert summary["repeat_callers"] == 3  # one caller, every call within 24 h of the one before
    assert {row["to"]: row["calls"] for row in report["numbers"]} == {
        "+18005559876": 2, "+18005550199": 1}  # fmt: skip
    assert [(row["region"], row["calls"]) for row in report["regions"]] == [("US", 3)]
    table = server.cli("report", *span, "--number", "+18005550199").stdout
    assert "success rate" in table and "+18005550199" in table
    assert_one_line_error(server.cli("report", "--since", "yesterday", check=False), "--since")
    assert_one_line_error(server.cli("report", "--number", "18OO", check=False), "--number")
    by_region = json.loads(server.cli("report", *span, "--region", "us", "--json").stdout)
    assert by_region["summary"]["calls"] == 3
    unknown = json.loads(server.cli("report", *span, "--region", "unknown", "--json").stdout)
    assert unknown["summary"]["calls"] == 0
    caller = json.loads(server.cli("report", *span, "--caller", "+15551234567", "--json").stdout)
    assert caller["summary"]["calls"] == 3


def test_report_staffing_per_hour(server: ServerProcess) -> None:
    # The published example in one hour: 200 calls of 180 s are 10 Erlangs -> 14 agents.
    with httpx.Client() as client:
        for n in range(200):
            fields = callback_fields(
                Timestamp=f"Thu, 04 Apr 2024 09:{n % 60:02d}:{n // 60:02d} +0000",
                CallDuration="180",
            )
            assert server.post(fields, client=client).status_code == 200
    span = ("--since", "2024-04-04T00:00:00Z", "--until", "2024-04-05T00:00:00Z")
    plan = json.loads(server.cli("report", *span, "--staffing", "--json").stdout)
    hours = plan["intervals"]
    assert len(hours) == 24 and len(plan["profile"]) == 24
    nine = hours[9]
    assert (nine["start"], nine["calls"], nine["aht_s"]) == ("2024-04-04T09:00:00Z", 200, 180)
    assert (nine["erlangs"], nine["agents"], nine["scheduled"]) == (10, 14, 14)
    assert nine["service_level"] == pytest.approx(0.888, abs=5e-4)
    assert [h["agents"] for h in hours if h is not nine] == [0] * 23
    rostered = json.loads(
        server.cli(
            "report", *span, "--staffing", "--json", "--shrinkage", "0.3", "--max-occupancy",
            "0.7", "--answer-within", "20", "--service-level", "0.8",
        ).stdout
    )["intervals"][9]  # fmt: skip
    assert (rostered["agents"], rostered["scheduled"]) == (15, 22)
    table = server.cli("report", *span, "--staffing").stdout
    row = next(line for line in table.splitlines() if "2024-04-04 09:00" in line)
    assert row.split()[2:7] == ["200", "180", "10.00", "14", "14"]
    assert "line staffing" in table
    # --tz (default CALLPULSE_TIMEZONE): Kolkata's 14:00 hour is 08:30-09:30 UTC, 110 of the calls.
    local = server.cli("report", *span, "--staffing", "--tz", "Asia/Kolkata").stdout
    assert "hour (Asia/Kolkata)" in local
    row = next(line for line in local.splitlines() if "2024-04-04 14:00" in line)
    assert row.split()[2] == "110"
    assert_one_line_error(
        server.cli("report", "--staffing", "--tz", "Mars/Base", check=False), "--tz", "IANA"
    )
    assert_one_line_error(
        server.cli("report", "--staffing", "--service-level", "1.5", check=False),
        "--service-level", "below 1",
    )  # fmt: skip
    assert_one_line_error(
        server.cli("report", "--shrinkage", "0.3", check=False), "--shrinkage", "--staffing"
    )
    assert_one_line_error(
        server.cli("report", "--staffing", "--max-occupancy", "most", check=False),
        "--max-occupancy",
    )


def test_quarantine_replay_after_adding_a_key(tmp_path: Path) -> None:
    known, newcomer = "b3877c40-0000-4998-90ad-00000000000a", "b3877c40-0000-4998-90ad-00000000000b"
    server = ServerProcess(tmp_path, env={"CALLPULSE_SIGNING_KEYS": f"{known}=PSKa"}).start()
    try:
        late = callback_fields(AccountSid=newcomer)
        assert server.post(late, key="PSKb").status_code == 403  # no key for it yet
        bad = callback_fields(AccountSid=known, CallSid="not an id")
        assert server.post(bad, key="PSKa").status_code == 400
    finally:
        server.stop()
    entries = [
        json.loads(e) for e in server.cli("quarantine", "list", "--json").stdout.splitlines()
    ]
    assert [e["reason"] for e in entries] == ["invalid", "signature"]

    env = {**server.env, "CALLPULSE_SIGNING_KEYS": f"{known}=PSKa,{newcomer}=PSKb"}
    run_cli("quarantine", "replay", "--all", env=env, cwd=tmp_path)

    exported = [json.loads(line) for line in run_cli("export", env=env).stdout.splitlines()]
    assert [(r["account_sid"], r["call_sid"]) for r in exported] == [(newcomer, late["CallSid"])]
    left = run_cli("quarantine", "list", "--json", env=env).stdout.splitlines()
    assert [json.loads(e)["reason"] for e in left] == ["invalid"]
