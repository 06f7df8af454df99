from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.store.base import QuarantineWrite
from callpulse.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, run_step
from callpulse.store.sqlite import SQLiteStore
from tests.support import (
    SIGNING_KEY,
    ServerProcess,
    backend_database,
    callback_fields,
    run_cli,
    sign,
    until,
)


def test_replay_after_adding_a_key_stores_the_call_and_empties_quarantine(
    server: ServerProcess,
) -> None:
    rotated = callback_fields()
    broken = callback_fields(CallSid="not an id")
    assert server.post(rotated, key="PSKnew-key").status_code == 403
    assert server.post(broken).status_code == 400
    # entries are stored just after the answers (rejections never wait on the writer)
    entries = until(
        lambda: [
            json.loads(line)
            for line in server.cli("quarantine", "list", "--json").stdout.splitlines()
        ],
        lambda listed: len(listed) >= 2,
    )
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


def _schema_0002(store: Any) -> None:
    """The schema as it was before data problems: migrations 0001 and 0002 only."""
    sqlite = isinstance(store, SQLiteStore)
    migrations = SQLITE_MIGRATIONS if sqlite else POSTGRES_MIGRATIONS
    with store._transaction() as conn:
        store._applied(conn)
        for migration in migrations[:2]:
            for step in migration.statements:
                run_step(conn, step)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES "
                + ("(?, ?)" if sqlite else "(%s, %s)"),
                (migration.name, datetime.now(UTC).isoformat()),
            )


def test_entries_quarantined_under_the_old_rules_are_stored_after_the_upgrade(
    backend: str, tmp_path: Path
) -> None:
    """Before data problems, a signed failed call with an empty AudioInMos was refused (400) and
    quarantined; after `db upgrade`, `quarantine replay --all` stores it, checking its signature
    again (a forged entry stays)."""
    url = "https://callpulse.example.com/callbacks/call-status"
    failed = callback_fields(CallStatus="failed", CallDuration="0", AudioInMos="")
    unscored = callback_fields(AudioInMos="")
    forged = callback_fields(CallStatus="failed", AudioInMos="")
    with backend_database(backend, tmp_path) as database_url:
        store = open_store(Settings(database_url=database_url))
        _schema_0002(store)
        now = datetime.now(UTC)
        entries = []
        for fields, key in ((failed, SIGNING_KEY), (unscored, SIGNING_KEY), (forged, "PSKother")):
            body = urlencode(fields).encode()
            headers = {"content-type": "application/x-www-form-urlencoded",
                       "x-signalwire-signature": sign(url, fields, key)}  # fmt: skip
            entries.append(
                QuarantineWrite(
                    now,
                    "invalid",
                    {"AudioInMos": "must be a number from 1 to 5"},
                    "POST",
                    url,
                    headers,
                    body,
                    len(body),
                )
            )
        store.write_batch(entries)
        store.close()

        env = {
            **os.environ,
            "CALLPULSE_DATABASE_URL": database_url,
            "CALLPULSE_SIGNING_KEYS": SIGNING_KEY,
            "CALLPULSE_SPOOL_DIR": str(tmp_path / "s"),
        }
        assert "0003_data_problems" in run_cli("db", "upgrade", env=env, cwd=tmp_path).stdout
        run_cli("quarantine", "replay", "--all", env=env, cwd=tmp_path)
        rows = {
            row["call_sid"]: row
            for row in map(json.loads, run_cli("export", env=env, cwd=tmp_path).stdout.splitlines())
        }
        assert set(rows) == {failed["CallSid"], unscored["CallSid"]}
        assert (rows[failed["CallSid"]]["mos"], rows[failed["CallSid"]]["problems"]) == (None, [])
        assert [p["field"] for p in rows[unscored["CallSid"]]["problems"]] == ["AudioInMos"]
        left = run_cli("quarantine", "list", "--json", env=env, cwd=tmp_path).stdout.splitlines()
        assert [json.loads(e)["reason"] for e in left if e] == ["invalid"]
