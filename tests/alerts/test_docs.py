"""README's Alerts section against the code: its configuration example loads as it says, and its
receiver snippet accepts what callpulse signs."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from callpulse.alerts.notify import signature
from callpulse.config import load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def block(after: str, language: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(re.escape(after) + rf".*?```{language}\n(.*?)```", text, re.S)
    assert found, f"README.md has no {language} block after {after!r}"
    return found.group(1)


def test_the_complete_example_loads_with_the_rules_it_describes(tmp_path: Path) -> None:
    config = tmp_path / "callpulse.toml"
    config.write_text(block("A complete example:", "toml"))
    settings = load_settings({}, config)
    assert settings.alert_interval_s == 60
    assert settings.alert_webhook_secret == "a-long-random-secret"
    rules = {rule.name: rule for rule in settings.alerts}
    sales = rules["sales-answer-rate"]
    assert (sales.metric, sales.scope, sales.trigger, sales.reset) == (
        "success_rate",
        (("to", "+18005559876"),),
        0.9,
        0.95,
    )
    assert (sales.for_, sales.repeat, sales.severity) == (
        timedelta(minutes=5),
        timedelta(hours=1),
        "critical",
    )
    assert rules["mos-per-number"].per == "to"
    assert rules["us-poor-audio"].scope == (("region", "US"),)
    silent = rules["sales-silent"]
    assert (silent.metric, silent.window, silent.min_calls) == ("no_data", timedelta(minutes=30), 5)
    uk = rules["uk-volume"]
    assert (uk.metric, uk.factor, uk.direction, uk.baseline_weeks) == ("volume", 2.0, "drop", 4)
    assert not rules["volume"].enabled
    assert rules["success-rate"].enabled  # the other shipped rules stay


def test_the_receiver_snippet_accepts_a_callpulse_signature_and_nothing_else() -> None:
    namespace: dict[str, Any] = {}
    # The snippet as README shows it, run as a reader would paste it.
    exec(block("refuses old timestamps against replays:", "python"), namespace)  # noqa: S102
    verify = namespace["verify"]
    body = b'{"rule": "low-mos", "state": "firing"}'
    header = signature("a-long-random-secret", int(time.time()), body)
    assert verify("a-long-random-secret", header, body)
    assert not verify("a-long-random-secret", header, body + b" ")
    assert not verify("another-secret", header, body)
    stale = signature("a-long-random-secret", int(time.time()) - 301, body)
    assert not verify("a-long-random-secret", stale, body)
