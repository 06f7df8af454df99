from __future__ import annotations

import json

from tests.support import ServerProcess, callback_fields, run_cli


def test_replay_after_adding_a_key_stores_the_call_and_empties_quarantine(
    server: ServerProcess,
) -> None:
    rotated = callback_fields()
    broken = callback_fields(CallSid="not an id")
    assert server.post(rotated, key="PSKnew-key").status_code == 403
    assert server.post(broken).status_code == 400
    entries = [
        json.loads(line) for line in server.cli("quarantine", "list", "--json").stdout.splitlines()
    ]
    assert [e["reason"] for e in entries] == ["invalid", "signature"]

    env = dict(
        server.env, CALLPULSE_SIGNING_KEYS=f"{server.env['CALLPULSE_SIGNING_KEYS']},PSKnew-key"
    )
    result = run_cli("quarantine", "replay", "--all", env=env, cwd=server.workdir)
    assert "inserted" in result.stdout and "still invalid" in result.stdout
    left = [
        json.loads(line) for line in server.cli("quarantine", "list", "--json").stdout.splitlines()
    ]
    assert [e["reason"] for e in left] == ["invalid"]
    exported = [json.loads(line) for line in server.cli("export").stdout.splitlines()]
    assert [row["call_sid"] for row in exported] == [rotated["CallSid"]]


def test_replay_needs_ids_or_all(server: ServerProcess) -> None:
    result = server.cli("quarantine", "replay", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "callpulse: error: name entry ids (see: callpulse quarantine list) or pass --all"
    ]
    missing = server.cli("quarantine", "replay", "42", check=False)
    assert "no quarantine entry 42" in missing.stderr and missing.returncode == 1
