"""`callpulse simulate` against a real receiver: every call sent is stored, and tallied."""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from callpulse.simulate import modelled_live_calls, send_calls
from callpulse.traffic import SimulatedCall, TrafficModel, calls_per_hour
from tests.support import SIGNING_KEY, EmulatorProcess, ServerProcess, run_cli


def simulate(server: ServerProcess, *args: str, check: bool = True) -> tuple[int, str, str]:
    result = server.cli("simulate", "--url", server.callback_url, *args, check=check)
    return result.returncode, result.stdout, result.stderr


def test_every_call_sent_is_stored_and_tallied(server: ServerProcess) -> None:
    code, out, err = simulate(server, "--calls", "300", "--rate", "0", "--seed", "5")
    assert code == 0, err
    assert "calls sent" in out and "300" in out
    assert "answer 200 inserted" in out
    assert "300/300" in err  # the progress bar
    with server.store() as store:
        assert store.count_calls() == 300
        calls = [stored.record for stored in store.iter_calls()]
    assert len({c.to_number for c in calls}) >= 3
    assert {c.status for c in calls} == {"completed", "failed"}
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=5) < c.started_at <= now for c in calls)


def test_same_seed_again_is_answered_as_duplicates(server: ServerProcess) -> None:
    simulate(server, "--calls", "50", "--rate", "0", "--seed", "9", "--backfill", "1d")
    code, out, _ = simulate(
        server, "--calls", "50", "--rate", "0", "--seed", "9", "--backfill", "1d"
    )
    # The backlog's timestamps are relative to now, so the same sids may carry other times:
    # either way nothing new is stored.
    assert code == 0 and "answer 200 inserted" not in out
    with server.store() as store:
        assert store.count_calls() == 50


def test_backfill_spreads_over_the_past_days(server: ServerProcess) -> None:
    code, _, err = simulate(
        server, "--calls", "400", "--rate", "0", "--backfill", "3d", "--numbers", "+18002672001"
    )
    assert code == 0, err
    with server.store() as store:
        calls = [stored.record for stored in store.iter_calls()]
    assert {c.to_number for c in calls} == {"+18002672001"}
    days = Counter(c.started_at.date() for c in calls)
    assert len(days) >= 3
    now = datetime.now(UTC)
    assert all(now - timedelta(days=3, minutes=1) <= c.started_at <= now for c in calls)


def test_duration_paces_to_the_rate(server: ServerProcess) -> None:
    started = datetime.now(UTC)
    code, out, err = simulate(server, "--duration", "2s", "--rate", "25")
    elapsed = (datetime.now(UTC) - started).total_seconds()
    assert code == 0, err
    assert re.search(r"answer 200 inserted\W+50\b", out), out
    assert elapsed >= 2


def test_wrong_key_is_one_line_error_with_the_answers(server: ServerProcess) -> None:
    code, out, err = simulate(
        server, "--calls", "5", "--signing-key", "not-" + SIGNING_KEY, check=False
    )
    assert code == 1
    assert "answer 403" in out
    last = err.strip().splitlines()[-1]
    assert last.startswith("callpulse: error: the receiver accepted none of 5 calls (403 x5)")
    assert "Traceback" not in err


def test_usage_errors_are_one_line() -> None:
    cases = {
        ("--url", "http://127.0.0.1:9/x"): "give either --calls N or --duration",
        ("--calls", "3"): "give --url",
        ("--url", "http://127.0.0.1:9/x", "--calls", "3", "--numbers", "12345"): "E.164",
        ("--url", "http://127.0.0.1:9/x", "--duration", "1y"): "a span such as 400d",
    }
    for args, message in cases.items():
        result = run_cli("simulate", *args, env={"CALLPULSE_SIGNING_KEYS": "k"}, check=False)
        assert result.returncode != 0
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_unreachable_receiver_is_one_line_error() -> None:
    result = run_cli(
        "simulate", "--url", "http://127.0.0.1:9/callbacks/call-status", "--calls", "3",
        env={"CALLPULSE_SIGNING_KEYS": "k"}, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "accepted none of 3 calls (ConnectError x3)" in result.stderr


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    proc = EmulatorProcess(tmp_path, args=("--numbers", "3", "--seed", "1")).start()
    yield proc
    proc.stop()


def via_emulator(emulator: EmulatorProcess, *args: str) -> tuple[str, ...]:
    return (
        "--via-emulator", emulator.base_url,
        "--project-id", emulator.project_id,
        "--api-token", emulator.api_token,
        *args,
    )  # fmt: skip


def test_through_the_emulator_every_callback_is_delivered_and_stored(
    server: ServerProcess, emulator: EmulatorProcess
) -> None:
    code, out, err = simulate(
        server, *via_emulator(emulator, "--calls", "200", "--rate", "0", "--backfill", "2d")
    )
    assert code == 0, err
    assert re.search(r"answer 200 delivered\W+200\b", out), out
    with server.store() as store:
        calls = [stored.record for stored in store.iter_calls()]
    assert len(calls) == 200
    assert {c.account_sid for c in calls} == {emulator.project_id}
    numbers = httpx.get(
        f"{emulator.api_base}/Accounts/{emulator.project_id}/IncomingPhoneNumbers.json",
        auth=emulator.auth,
    ).json()["incoming_phone_numbers"]
    assert {c.to_number for c in calls} == {n["phone_number"] for n in numbers}
    assert all(n["status_callback"] == server.callback_url for n in numbers)


def test_dropped_callbacks_are_counted_and_not_stored(
    server: ServerProcess, tmp_path: Path
) -> None:
    emulator = EmulatorProcess(
        tmp_path, args=("--numbers", "2", "--drop-share", "0.3", "--seed", "2")
    ).start()
    try:
        code, out, err = simulate(server, *via_emulator(emulator, "--calls", "100", "--rate", "0"))
    finally:
        emulator.stop()
    assert code == 0, err
    delivered = re.search(r"answer 200 delivered\W+(\d+)\b", out)
    dropped = re.search(r"answer dropped\W+(\d+)\b", out)
    assert delivered and dropped, out
    assert int(delivered.group(1)) + int(dropped.group(1)) == 100
    assert 10 < int(dropped.group(1)) < 50
    with server.store() as store:
        assert store.count_calls() == int(delivered.group(1))


def test_an_emulator_without_numbers_is_one_line_error(tmp_path: Path) -> None:
    emulator = EmulatorProcess(tmp_path).start()
    try:
        result = run_cli("simulate", *via_emulator(emulator, "--calls", "1"), check=False)
    finally:
        emulator.stop()
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"callpulse: error: the emulator at {emulator.base_url} has no phone numbers "
        "(start it with: callpulse emulate --numbers 5)"
    )


# -- live traffic that follows the daily pattern (the demo's default) ----------------------------


def test_modelled_live_calls_arrive_at_the_models_rate_for_now() -> None:
    per_day = 240_000  # many calls, so an hour's count is close to its expectation
    before = datetime.now(UTC).replace(microsecond=0)
    calls = modelled_live_calls(TrafficModel(random.Random(7), ["+18005550100"]), per_day)
    first = next(calls)
    assert first.started_at >= before
    hour_end = first.started_at + timedelta(hours=1)
    starts = [first.started_at]
    for call in calls:
        if call.started_at >= hour_end:
            break
        starts.append(call.started_at)
    assert starts == sorted(starts)
    mid = first.started_at + timedelta(minutes=30)
    expected = calls_per_hour(mid, per_day)
    assert abs(len(starts) - expected) < 5 * expected**0.5 + 0.05 * expected
    # Never busier than the pattern's busiest hour of the backlog it continues.
    day = mid.replace(hour=0, minute=0, second=0)
    busiest = max(calls_per_hour(day + timedelta(minutes=10 * i), per_day) for i in range(144))
    assert expected <= busiest


def test_send_calls_at_start_times_waits_for_each_and_stops_while_waiting() -> None:
    sent: list[tuple[datetime, datetime]] = []

    class Recorder:
        async def send(self, client: httpx.AsyncClient, call: SimulatedCall, sid: str) -> str:
            sent.append((call.started_at, datetime.now(UTC)))
            return "200 inserted"

        async def close(self) -> None:
            pass

    def call(at: datetime) -> SimulatedCall:
        return SimulatedCall("+15551234567", "+18005550100", at, "completed", 60, 4.3)

    async def run() -> None:
        now = datetime.now(UTC)
        soon = [call(now + timedelta(seconds=s)) for s in (0.2, 0.4)]
        later = call(now + timedelta(hours=1))
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)
        tally = await send_calls(Recorder(), [*soon, later], random.Random(1),
                                 stop=stop, at_start_times=True)  # fmt: skip
        assert tally.calls == 2  # the one an hour ahead was not sent: stopped while waiting

    asyncio.run(run())
    assert len(sent) == 2
    assert all(sent_at >= started_at for started_at, sent_at in sent)


# -- several sending processes ----------------------------------------------------------------


def test_processes_share_the_calls_and_every_one_is_stored(server: ServerProcess) -> None:
    args = ("--calls", "301", "--rate", "0", "--seed", "3", "--processes", "3")
    code, out, err = simulate(server, *args)
    assert code == 0, err
    assert re.search(r"calls sent\W+301\b", out), out
    assert re.search(r"answer 200 inserted\W+301\b", out), out
    assert "301/301" in err  # one progress bar over all processes
    with server.store() as store:
        assert store.count_calls() == 301
    # The same seed draws the same calls (sids) in each process: nothing new is stored (their
    # start times are now, so they come as updates).
    code, out, err = simulate(server, *args)
    assert code == 0, err
    assert "inserted" not in out, out
    with server.store() as store:
        assert store.count_calls() == 301


def test_processes_refuse_the_emulator_path() -> None:
    emulator = ("--via-emulator", "http://127.0.0.1:9", "--project-id", "p", "--api-token", "t")
    result = run_cli("simulate", *emulator, "--calls", "3", "--processes", "2", check=False)
    assert result.returncode == 1
    assert "--processes sends straight at a receiver" in result.stderr
