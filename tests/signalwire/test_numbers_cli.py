"""`callpulse numbers list|show|configure` against a running emulator."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import EmulatorProcess, free_port, run_cli
from tests.test_cli import assert_one_line_error, cli_env

RECEIVER_URL = "https://calls.example.com/callbacks/call-status"


def signalwire_env(tmp_path: Path, emulator: EmulatorProcess, **overrides: str) -> dict[str, str]:
    credentials = {
        "SIGNALWIRE_SPACE_URL": emulator.base_url,
        "SIGNALWIRE_PROJECT_ID": emulator.project_id,
        "SIGNALWIRE_API_TOKEN": emulator.api_token,
    }
    return cli_env(tmp_path, **{**credentials, **overrides})


@pytest.fixture
def numbered(tmp_path: Path) -> Iterator[EmulatorProcess]:
    """An emulator whose project has 12 numbers."""
    proc = EmulatorProcess(tmp_path, args=("--numbers", "12", "--seed", "3")).start()
    yield proc
    proc.stop()


def numbers(tmp_path: Path, emulator: EmulatorProcess, **env: str) -> list[dict[str, Any]]:
    result = run_cli(
        "numbers", "list", "--json", env=signalwire_env(tmp_path, emulator, **env), cwd=tmp_path
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def numbers_cli(
    tmp_path: Path, emulator: EmulatorProcess, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = signalwire_env(tmp_path, emulator)
    return run_cli("numbers", *args, env=env, cwd=tmp_path, check=check)


def test_list_follows_pages_past_the_largest_page(tmp_path: Path) -> None:
    # 1000 per page is the API's maximum, so 1003 numbers take two pages.
    emulator = EmulatorProcess(tmp_path, args=("--numbers", "1003", "--seed", "5")).start()
    try:
        listed = numbers(tmp_path, emulator)
    finally:
        emulator.stop()
    assert len(listed) == 1003
    assert len({n["sid"] for n in listed}) == 1003
    assert all(n["phone_number"].startswith("+") for n in listed)


def test_list_shows_a_table_and_show_finds_by_number_or_sid(
    tmp_path: Path, numbered: EmulatorProcess
) -> None:
    listed = numbers(tmp_path, numbered)
    assert len(listed) == 12
    first = listed[0]
    table = numbers_cli(tmp_path, numbered, "list").stdout
    assert "12 phone numbers" in table
    assert "StatusCallback" in table
    assert first["phone_number"] in table

    by_number = json.loads(numbers_cli(tmp_path, numbered, "show", first["phone_number"]).stdout)
    by_sid = json.loads(numbers_cli(tmp_path, numbered, "show", first["sid"]).stdout)
    assert by_number == by_sid == first


@pytest.mark.parametrize("unknown", ["+15550000000", "PNnope"])
def test_show_an_unknown_number(tmp_path: Path, numbered: EmulatorProcess, unknown: str) -> None:
    result = numbers_cli(tmp_path, numbered, "show", unknown, check=False)
    assert result.returncode == 1
    assert_one_line_error(result, f"no phone number {unknown!r}")


def test_configure_all_dry_run_then_apply(tmp_path: Path, numbered: EmulatorProcess) -> None:
    before = numbers(tmp_path, numbered)
    dry = numbers_cli(tmp_path, numbered, "configure", "--all", "--url", RECEIVER_URL)
    assert "dry run: 12 of 12 numbers would change" in dry.stdout
    assert f"StatusCallback (none) → {RECEIVER_URL}" in dry.stdout
    assert numbers(tmp_path, numbered) == before  # a dry run changes nothing

    applied = numbers_cli(
        tmp_path, numbered, "configure", "--all", "--url", RECEIVER_URL, "--apply"
    )
    assert "changed 12 numbers, 0 already right" in applied.stdout
    after = numbers(tmp_path, numbered)
    assert {(n["status_callback"], n["status_callback_method"]) for n in after} == {
        (RECEIVER_URL, "POST")
    }
    assert [n["sid"] for n in after] == [n["sid"] for n in before]

    again = numbers_cli(tmp_path, numbered, "configure", "--all", "--url", RECEIVER_URL, "--apply")
    assert "changed 0 numbers, 12 already right" in again.stdout
    assert again.stdout.count(": unchanged") == 12


def test_configure_some_numbers_with_get(tmp_path: Path, numbered: EmulatorProcess) -> None:
    listed = numbers(tmp_path, numbered)
    chosen = [listed[2]["phone_number"], listed[5]["sid"], listed[2]["sid"]]  # one named twice
    args = ["configure", "--url", RECEIVER_URL, "--method", "get", "--apply"]
    for name in chosen:
        args += ["--number", name]
    result = numbers_cli(tmp_path, numbered, *args)
    assert "method POST → GET" in result.stdout
    assert "changed 2 numbers, 0 already right" in result.stdout
    after = {n["sid"]: n for n in numbers(tmp_path, numbered)}
    changed = {sid for sid, n in after.items() if n["status_callback"] == RECEIVER_URL}
    assert changed == {listed[2]["sid"], listed[5]["sid"]}
    assert {after[sid]["status_callback_method"] for sid in changed} == {"GET"}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--url", RECEIVER_URL], "--number"),
        (["--all", "--number", "+15550000000", "--url", RECEIVER_URL], "not both"),
        (["--all", "--url", "ftp://calls.example.com/cb"], "--url"),
        (["--all", "--url", "calls.example.com/cb"], "http://"),
        (["--all", "--url", RECEIVER_URL, "--method", "PUT"], "--method"),
        (["--number", "+15550000000", "--url", RECEIVER_URL, "--apply"], "+15550000000"),
    ],
    ids=["no numbers", "both", "ftp url", "no scheme", "bad method", "unknown number"],
)
def test_configure_errors_change_nothing(
    tmp_path: Path, numbered: EmulatorProcess, args: list[str], needle: str
) -> None:
    before = numbers(tmp_path, numbered)
    result = numbers_cli(tmp_path, numbered, "configure", *args, check=False)
    assert_one_line_error(result, needle)
    assert numbers(tmp_path, numbered) == before


def test_wrong_token_says_what_to_check(tmp_path: Path, numbered: EmulatorProcess) -> None:
    env = signalwire_env(tmp_path, numbered, SIGNALWIRE_API_TOKEN="PTwrong")
    for args in (["list"], ["show", "+15550000000"], ["configure", "--all", "--url", RECEIVER_URL]):
        result = run_cli("numbers", *args, env=env, cwd=tmp_path, check=False)
        assert result.returncode == 1
        assert_one_line_error(result, "check SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN")


def test_unreachable_space_and_missing_settings(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(
        tmp_path,
        SIGNALWIRE_SPACE_URL=f"http://127.0.0.1:{port}",
        SIGNALWIRE_PROJECT_ID="p",
        SIGNALWIRE_API_TOKEN="t",
    )
    result = run_cli("numbers", "list", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert_one_line_error(result, f"127.0.0.1:{port}", "SIGNALWIRE_SPACE_URL")

    env = {k: v for k, v in cli_env(tmp_path).items() if not k.startswith("SIGNALWIRE_")}
    result = run_cli("numbers", "list", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert_one_line_error(
        result, "SIGNALWIRE_SPACE_URL, SIGNALWIRE_PROJECT_ID, SIGNALWIRE_API_TOKEN"
    )
