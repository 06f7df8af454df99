"""`--database` on every command that opens the database; reading never creates one."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import click
import httpx
import pytest
from click.testing import CliRunner

from callpulse.cli import cli
from callpulse.config import Settings
from callpulse.ingest.gate import RawCallback, gate_for
from callpulse.store import open_store
from callpulse.store.base import QuarantineWrite
from tests.support import (
    ACCOUNT_SID,
    EmulatorProcess,
    ServerProcess,
    callback_fields,
    free_port,
    postgres_schema,
    run_cli,
)
from tests.test_cli import COMMANDS, assert_one_line_error, cli_env

# Every command that opens the database; a new one must take --database too.
DATABASE_COMMANDS = {
    ("report",),
    ("export",),
    ("quarantine", "list"),
    ("quarantine", "show"),
    ("quarantine", "replay"),
    ("db", "upgrade"),
    ("db", "status"),
    ("db", "prune"),
    ("db", "rebuild-rollups"),
    ("serve",),
    ("reconcile",),
    ("demo",),
    ("alerts", "list"),
    ("alerts", "history"),
    ("alerts", "evaluate"),
    ("alerts", "silence"),
    ("alerts", "unsilence"),
}
READING = sorted(DATABASE_COMMANDS - {("db", "upgrade"), ("serve",), ("reconcile",), ("demo",)})
ARGS = {("report",): ["--since", "2024-04-01T00:00:00Z", "--until", "2024-04-08T00:00:00Z"],
        ("quarantine", "show"): ["1"], ("quarantine", "replay"): ["--all", "--allow-unsigned"],
        ("db", "prune"): ["--older-than", "400d"], ("alerts", "silence"): ["volume", "--for", "1h"],
        ("alerts", "unsilence"): ["volume"]}  # fmt: skip


def command(path: tuple[str, ...]) -> click.Command:
    found: click.Command = cli
    for name in path:
        assert isinstance(found, click.Group)
        found = found.commands[name]
    return found


def test_every_database_command_takes_the_option() -> None:
    with_option = {
        path for path in COMMANDS if any("--database" in p.opts for p in command(path).params)
    }
    assert with_option == DATABASE_COMMANDS


def filled(url: str) -> str:
    """An upgraded database holding one call and one quarantine entry (id 1)."""
    settings = Settings(database_url=url)
    raw = RawCallback("POST", "http://h/cb", {"content-type": "application/x-www-form-urlencoded"},
                      urlencode(callback_fields()).encode(), 0)  # fmt: skip
    write = gate_for(settings, allow_unsigned=True).accept(raw)
    entry = QuarantineWrite(datetime.now(UTC), "signature", {"X-SignalWire-Signature": "missing"},
                            "POST", "http://h/cb", {}, b"CallSid=x", 9)  # fmt: skip
    with open_store(settings) as store:
        store.upgrade()
        store.write_batch([write, entry])
    return url


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """Where CALLPULSE_DATABASE_URL points: --database must win, so it never comes to exist."""
    return tmp_path / "elsewhere" / "setting.db"


def invoke(tmp_path: Path, elsewhere: Path, *args: str) -> str:
    env = cli_env(tmp_path, CALLPULSE_DATABASE_URL=f"sqlite:///{elsewhere}")
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not elsewhere.exists()
    return result.output


@pytest.mark.parametrize("path", [*READING, ("db", "upgrade")], ids=" ".join)
@pytest.mark.parametrize("form", ["path", "url"])
def test_database_option_in_process(
    tmp_path: Path, elsewhere: Path, path: tuple[str, ...], form: str
) -> None:
    db_file = tmp_path / "chosen.db"
    filled(f"sqlite:///{db_file}")
    given = str(db_file) if form == "path" else f"sqlite:///{db_file}"
    out = invoke(tmp_path, elsewhere, *path, "--database", given, *ARGS.get(path, []))
    expected = {
        ("report",): "+18005559876",  # the called number of the stored call
        ("export",): '"call_sid"',
        ("quarantine", "list"): "1 kept",
        ("quarantine", "show"): '"reason": "signature"',
        ("quarantine", "replay"): "still",  # unsigned CallSid=x is still invalid
        ("db", "upgrade"): "schema is up to date",
        ("db", "status"): f"database sqlite:///{db_file}",
        ("db", "prune"): "removed 1 calls",  # its 2024 timestamp
        ("db", "rebuild-rollups"): "rebuilt from 1 calls",
        ("alerts", "list"): "alert rules",
        ("alerts", "history"): "alert history",
        ("alerts", "evaluate"): "transitions",
        ("alerts", "silence"): "volume silenced until",
        ("alerts", "unsilence"): "volume was not silenced",
    }[path]
    assert expected in out, out


def test_database_option_takes_postgresql(tmp_path: Path, elsewhere: Path) -> None:
    with postgres_schema() as url:
        filled(url)
        out = invoke(tmp_path, elsewhere, "export", "--database", url)
        assert out.count('"call_sid"') == 1
        assert "database postgresql://" in invoke(tmp_path, elsewhere, "db", "status",
                                                  "--database", url)  # fmt: skip


@pytest.mark.parametrize("path", READING, ids=" ".join)
def test_reading_a_missing_file_names_it_and_creates_nothing(
    tmp_path: Path, path: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo.db"
    result = run_cli(*path, "--database", str(missing), *ARGS.get(path, []),
                     env=cli_env(tmp_path), cwd=tmp_path, check=False)  # fmt: skip
    assert_one_line_error(result, str(missing), "--database", "callpulse db upgrade")
    assert not missing.exists()


def test_a_database_without_tables_says_how_to_create_them(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()  # what an earlier `callpulse report` left behind
    result = run_cli("report", "--database", str(empty), env=cli_env(tmp_path), check=False)
    assert_one_line_error(result, str(empty), "no callpulse tables", "callpulse db upgrade")


def test_the_demo_database_is_found(tmp_path: Path) -> None:
    filled(f"sqlite:///{tmp_path / 'callpulse-demo.db'}")
    env = cli_env(tmp_path)
    del env["CALLPULSE_DATABASE_URL"]  # a newcomer after `callpulse demo`: nothing set
    result = run_cli("export", env=env, cwd=tmp_path)
    assert result.stdout.count('"call_sid"') == 1
    assert "callpulse-demo.db" in result.stderr
    assert not (tmp_path / "callpulse.db").exists()
    # A database chosen on purpose is never swapped for the demo's.
    chosen = run_cli("export", "--database", "callpulse.db", env=env, cwd=tmp_path, check=False)
    assert_one_line_error(chosen, "callpulse.db")


def test_serve_stores_into_the_database_option(tmp_path: Path, elsewhere: Path) -> None:
    chosen = tmp_path / "chosen.db"
    server = ServerProcess(tmp_path, database_url=f"sqlite:///{elsewhere}",
                           args=("--database", str(chosen))).start()  # fmt: skip
    try:
        assert server.post(callback_fields()).json() == {"result": "inserted"}
    finally:
        server.stop()
    assert f"database sqlite:///{chosen}" in server.log_path.read_text()
    with open_store(Settings(database_url=f"sqlite:///{chosen}")) as store:
        assert store.count_calls() == 1
    assert not elsewhere.exists()


def test_reconcile_stores_into_the_database_option(tmp_path: Path, elsewhere: Path) -> None:
    emulator = EmulatorProcess(tmp_path).start()
    try:
        env = cli_env(tmp_path, CALLPULSE_DATABASE_URL=f"sqlite:///{elsewhere}",
                      SIGNALWIRE_SPACE_URL=emulator.base_url, SIGNALWIRE_PROJECT_ID=ACCOUNT_SID,
                      SIGNALWIRE_API_TOKEN=emulator.api_token)  # fmt: skip
        chosen = tmp_path / "chosen.db"
        result = run_cli("reconcile", "--since", "1h", "--database", str(chosen), env=env)
        assert "inserted as reconciled" in result.stdout
    finally:
        emulator.stop()
    assert run_cli("db", "status", "--database", str(chosen), env=env).stdout.startswith(
        f"database sqlite:///{chosen}"
    )
    assert not elsewhere.exists()


def test_demo_stores_into_the_database_option(tmp_path: Path, elsewhere: Path) -> None:
    chosen = tmp_path / "chosen.db"
    env = cli_env(tmp_path, CALLPULSE_DATABASE_URL=f"sqlite:///{elsewhere}")
    out_path = tmp_path / "demo.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "callpulse", "demo", "--port", str(free_port()),
             "--emulator-port", str(free_port()), "--database", str(chosen), "--days", "0",
             "--rate", "5"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not re.search(r"database\s+sqlite:///\S+", out_path.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.2)
        assert f"callpulse report --database sqlite:///{chosen}" in out_path.read_text()
        url = re.search(r"dashboard\s+(http://\S+)/", out_path.read_text())
        assert url is not None
        assert httpx.get(f"{url.group(1)}/healthz").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    with open_store(Settings(database_url=f"sqlite:///{chosen}")) as store:
        assert store.migration_status()[0].applied_at is not None
    assert not elsewhere.exists()
