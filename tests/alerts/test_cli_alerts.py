from __future__ import annotations

import json
import os
from pathlib import Path

from callpulse.config import Settings
from callpulse.store import open_store
from tests.alerts.conftest import NOW, writer_of
from tests.alerts.receiver import Receiver, verify
from tests.support import run_cli

SECRET = "whsec-test-0123456789"
CONFIG = """
alerts_defaults = false

[[alerts]]
name = "low-mos"
metric = "mos_p50"
per = "to"
min_calls = 5
trigger = 3.5
reset = 3.8
"""


def test_evaluate_list_history_silence_and_test(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = open_store(Settings(database_url=f"sqlite:///{db}"))
    store.upgrade()
    writer_of(store)(10, to="+18005550002", mos=2.8)
    store.close()
    config = tmp_path / "callpulse.toml"
    config.write_text(CONFIG)
    with Receiver(failures=1) as receiver:
        env = {
            **os.environ,
            "CALLPULSE_DATABASE_URL": f"sqlite:///{db}",
            "CALLPULSE_CONFIG": str(config),
            "CALLPULSE_ALERT_WEBHOOK_URL": receiver.url,
            "CALLPULSE_ALERT_WEBHOOK_SECRET": SECRET,
        }

        def cli(*args: str, check: bool = True) -> str:
            return run_cli(*args, env=env, cwd=tmp_path, check=check).stdout

        out = cli("alerts", "evaluate", "--at", NOW.isoformat())
        assert "low-mos to=+18005550002: ok -> firing" in out
        assert "1 transitions, 1 notifications queued, 0 sent, 1 failed" in out
        assert "0 transitions" in cli("alerts", "evaluate", "--at", NOW.isoformat())
        retry_at = NOW.replace(second=15).isoformat()  # after the first backoff
        assert "1 sent" in cli("alerts", "evaluate", "--at", retry_at)
        assert [b["state"] for b in receiver.delivered] == ["firing"]

        listed = [json.loads(line) for line in cli("alerts", "list", "--json").splitlines()]
        assert listed[0]["rule"] == "low-mos" and listed[0]["enabled"] is True
        assert listed[1]["state"] == "firing" and listed[1]["scope"] == "to=+18005550002"
        (past,) = [json.loads(x) for x in cli("alerts", "history", "--json").splitlines()]
        assert (past["rule"], past["state"], past["value"]) == ("low-mos", "firing", 2.8)

        assert "low-mos silenced until" in cli("alerts", "silence", "low-mos", "--for", "2h")
        (rule, *_active) = [json.loads(x) for x in cli("alerts", "list", "--json").splitlines()]
        assert rule["silenced_until"] is not None
        assert "low-mos unsilenced" in cli("alerts", "unsilence", "low-mos")

        assert "sent a sample notification of low-mos" in cli("alerts", "test", "low-mos")
        headers, body = receiver.attempts[-1]
        assert verify(SECRET, headers["X-Callpulse-Signature"], body)
        assert json.loads(body)["test"] is True

        wrong = run_cli("alerts", "test", "nope", env=env, cwd=tmp_path, check=False)
        assert wrong.returncode == 1
        assert wrong.stderr.strip() == "callpulse: error: no alert rule 'nope' (rules: low-mos)"
