"""`callpulse reconcile` and serve's periodic reconcile: callbacks the sender dropped are recovered
from the Calls API, each call stored exactly once, stored calls never touched."""

from __future__ import annotations

import email.utils
import itertools
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from callpulse.callback import WITHHELD
from callpulse.reconcile import OVERLAP, WINDOW, PeriodicReconcile, windows
from callpulse.signalwire.client import CompatibilityClient
from callpulse.store.records import StoredCall
from tests.support import EmulatorProcess, ServerProcess, free_port, run_cli
from tests.test_cli import assert_one_line_error, cli_env

# -- windows --------------------------------------------------------------------------------------

T0 = datetime(2024, 4, 4, 18, 0, tzinfo=UTC)


def test_windows_cover_the_range_and_overlap() -> None:
    cuts = windows(T0, T0 + timedelta(hours=3, minutes=30))
    assert cuts[0][0] == T0
    assert cuts[-1][1] == T0 + timedelta(hours=3, minutes=30)
    for (_, end), (start, _) in itertools.pairwise(cuts):
        assert start == end - OVERLAP
    assert all(end - start <= WINDOW for start, end in cuts)
    assert len(cuts) == 4


def test_a_short_or_empty_range_is_one_window() -> None:
    assert windows(T0, T0 + timedelta(minutes=5)) == [(T0, T0 + timedelta(minutes=5))]
    assert windows(T0, T0) == [(T0, T0)]


# -- the whole loop: emulator -> receiver, drops, reconcile ---------------------------------------


def signalwire_env(emulator: EmulatorProcess, **overrides: str) -> dict[str, str]:
    return {
        "SIGNALWIRE_SPACE_URL": emulator.base_url,
        "SIGNALWIRE_PROJECT_ID": emulator.project_id,
        "SIGNALWIRE_API_TOKEN": emulator.api_token,
        **overrides,
    }


def place(emulator: EmulatorProcess, http: httpx.Client, **params: str) -> dict[str, Any]:
    """An inbound call; answers once its callback was delivered or dropped."""
    response = http.post(
        f"{emulator.base_url}/emulator/calls", data={"Wait": "true", **params}, auth=emulator.auth
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def set_drop_share(emulator: EmulatorProcess, http: httpx.Client, share: float) -> None:
    response = http.post(
        f"{emulator.base_url}/emulator/settings",
        data={"DropShare": str(share)},
        auth=emulator.auth,
    )
    assert response.json()["drop_share"] == share


def rfc2822(moment: datetime) -> str:
    return email.utils.format_datetime(moment)


def summary_count(output: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)}\s*│\s*(\d+)", output)
    assert match, output
    return int(match.group(1))


def stored_calls(server: ServerProcess) -> dict[str, StoredCall]:
    with server.store() as store:
        return {c.record.call_sid: c for c in store.iter_calls()}


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    proc = EmulatorProcess(tmp_path, args=("--numbers", "4", "--seed", "11")).start()
    yield proc
    proc.stop()


def test_dropped_callbacks_are_reconciled_exactly_once(
    server: ServerProcess, emulator: EmulatorProcess
) -> None:
    env = {**server.env, **signalwire_env(emulator)}
    client = CompatibilityClient.from_environment(env)

    # Point every number at the receiver: a dry run first, which changes nothing.
    run_cli("numbers", "configure", "--all", "--url", server.callback_url, env=env)
    assert {n.status_callback for n in client.iter_numbers()} == {""}
    applied = run_cli(
        "numbers", "configure", "--all", "--url", server.callback_url, "--apply", env=env
    )
    assert "changed 4 numbers" in applied.stdout
    lines = [n.phone_number for n in client.iter_numbers()]

    now = datetime.now(UTC).replace(microsecond=0)
    since = now - timedelta(hours=5)
    with httpx.Client(timeout=30) as http:
        # Calls whose callbacks surely never arrive: on the range's edges, in the overlap of two
        # windows, a withheld caller, a failure; and one before the range, which must stay out.
        set_drop_share(emulator, http, 1.0)
        edge_cases = [
            {"Timestamp": rfc2822(since)},
            {"Timestamp": rfc2822(since + WINDOW - OVERLAP), "From": "anonymous"},
            {"Timestamp": rfc2822(since + WINDOW), "CallStatus": "failed"},
            {"Timestamp": rfc2822(since + 2 * WINDOW - OVERLAP / 2)},
        ]
        forced = [place(emulator, http, To=lines[i % 4], **p) for i, p in enumerate(edge_cases)]
        outside = place(emulator, http, To=lines[0], Timestamp=rfc2822(since - OVERLAP))
        # Then ordinary traffic with a fifth of the callbacks lost.
        set_drop_share(emulator, http, 0.2)
        ordinary = [
            place(
                emulator,
                http,
                To=lines[i % 4],
                Timestamp=rfc2822(since + timedelta(seconds=170 * i + 13)),
            )
            for i in range(100)
        ]
    placed = {c["sid"]: c for c in forced + ordinary}
    delivered = {sid for sid, c in placed.items() if c["callback"]["outcome"] != "dropped"}
    assert all(c["callback"]["outcome"] == "dropped" for c in [*forced, outside])
    assert 50 < len(delivered) < 100
    # A call the receiver holds in a version unlike the Calls API's: reconcile leaves it be.
    altered = forced[3]
    fields = {
        "CallSid": altered["sid"],
        "AccountSid": emulator.project_id,
        "From": altered["from"],
        "To": altered["to"],
        "Timestamp": altered["start_time"],
        "CallStatus": altered["status"],
        "CallDuration": str(altered["duration"] + 1),
        "AudioInMos": "1.5",
    }
    assert server.post(fields).json() == {"result": "inserted"}
    delivered.add(altered["sid"])

    before = stored_calls(server)
    assert set(before) == delivered
    missing = set(placed) - delivered

    first = run_cli("reconcile", "--since", since.isoformat(), env=env)
    assert summary_count(first.stdout, "seen in the Calls API") == len(placed)
    assert summary_count(first.stdout, "finished inbound") == len(placed)
    assert summary_count(first.stdout, "already stored") == len(delivered)
    assert summary_count(first.stdout, "inserted as reconciled") == len(missing)

    after = stored_calls(server)
    listed = list(client.iter_calls(since=since, until=now))
    assert set(after) == {c.sid for c in listed} == set(placed)  # every call, exactly once
    with server.store() as store:
        assert store.count_calls() == len(placed)
    for sid in delivered:  # untouched
        assert after[sid] == before[sid]
        assert (after[sid].source, after[sid].version) == ("callback", 1)
    for call in listed:
        if call.sid not in missing:
            continue
        stored = after[call.sid]
        assert (stored.source, stored.version) == ("reconciled", 1)
        record = stored.record
        assert record.account_sid == emulator.project_id
        assert record.to_number == call.to
        assert record.started_at == call.start_time
        assert (record.status, record.duration_s) == (call.status, call.duration_s)
        assert record.mos == pytest.approx(call.mos)
    assert after[forced[1]["sid"]].record.from_number == WITHHELD
    assert after[forced[2]["sid"]].record.status == "failed"

    again = run_cli("reconcile", "--since", since.isoformat(), "--until", now.isoformat(), env=env)
    assert summary_count(again.stdout, "inserted as reconciled") == 0
    assert summary_count(again.stdout, "already stored") == len(placed)
    assert stored_calls(server) == after


def test_serve_reconciles_periodically(tmp_path: Path, emulator: EmulatorProcess) -> None:
    client = CompatibilityClient.from_environment(signalwire_env(emulator))
    env = {"CALLPULSE_RECONCILE_INTERVAL_S": "1", **signalwire_env(emulator)}
    server = ServerProcess(tmp_path, env=env).start()
    try:
        for number in client.iter_numbers():
            client.update_number(number.sid, status_callback=server.callback_url, method="POST")
        with httpx.Client(timeout=30) as http:
            set_drop_share(emulator, http, 1.0)
            sids = {
                place(emulator, http, To=number.phone_number)["sid"]
                for number in client.iter_numbers()
            }
        deadline = time.monotonic() + 20
        while set(stored_calls(server)) != sids and time.monotonic() < deadline:
            time.sleep(0.2)
        stored = stored_calls(server)
        assert set(stored) == sids
        assert {c.source for c in stored.values()} == {"reconciled"}
    finally:
        stopping = time.monotonic()
        server.stop()
    assert time.monotonic() - stopping < 5  # the reconcile thread does not hold up shutdown
    assert "Traceback" not in server.log_path.read_text()


# -- errors ---------------------------------------------------------------------------------------


def test_wrong_credentials_and_unreachable_space(tmp_path: Path, emulator: EmulatorProcess) -> None:
    env = cli_env(tmp_path, **signalwire_env(emulator, SIGNALWIRE_API_TOKEN="PTno"))
    result = run_cli("reconcile", "--since", "2h", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert_one_line_error(result, "check SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN")

    port = free_port()
    env["SIGNALWIRE_SPACE_URL"] = f"http://127.0.0.1:{port}"
    result = run_cli("reconcile", "--since", "2h", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert_one_line_error(result, f"cannot reach SignalWire at 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--since", "yesterday"], "--since"),
        (["--since", "2h", "--until", "2024-13-01"], "--until"),
        (["--since", "1h", "--until", "3h"], "must be before --until"),
        ([], "--since"),
    ],
    ids=["word", "bad date", "since after until", "missing"],
)
def test_bad_times_are_one_line_usage_errors(
    tmp_path: Path, emulator: EmulatorProcess, args: list[str], needle: str
) -> None:
    env = cli_env(tmp_path, **signalwire_env(emulator))
    result = run_cli("reconcile", *args, env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert_one_line_error(result, needle)


def test_serve_needs_credentials_to_reconcile(tmp_path: Path) -> None:
    env = cli_env(tmp_path, CALLPULSE_SIGNING_KEYS="k", CALLPULSE_RECONCILE_INTERVAL_S="60")
    env = {k: v for k, v in env.items() if not k.startswith("SIGNALWIRE_")}
    result = run_cli("serve", "--port", str(free_port()), env=env, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # The line before it says where serve was about to listen.
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("callpulse: error: CALLPULSE_RECONCILE_INTERVAL_S=60 needs")
    assert "SIGNALWIRE_SPACE_URL" in error


def test_one_worker_of_a_server_reconciles_at_a_time(tmp_path: Path) -> None:
    lock = tmp_path / "spool" / "reconcile.lock"
    client = CompatibilityClient("http://127.0.0.1:9", "AC", "token")
    first, second = (PeriodicReconcile(client, 60, lock) for _ in range(2))
    assert first._is_the_one() and first._is_the_one()  # it keeps the lock
    assert not second._is_the_one()
    first.stop()  # never started: it lets go of the lock at once
    assert second._is_the_one()
    second.stop()
