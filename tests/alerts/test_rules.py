from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from callpulse.alerts.rules import DEFAULT_RULES, format_span, parse_span
from callpulse.config import ConfigError, load_settings


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    config = tmp_path / "callpulse.toml"
    config.write_text(text)
    return load_settings(env=env or {}, config_file=config)


def test_defaults_ship_enabled() -> None:
    rules = load_settings(env={}).alerts
    assert [r.name for r in rules] == [r.name for r in DEFAULT_RULES]
    assert all(r.enabled for r in rules)
    assert {r.metric for r in rules} == {
        "success_rate",
        "poor_rate",
        "mos_p50",
        "volume",
        "no_data",
    }


def test_defaults_switched_off_by_setting(tmp_path: Path) -> None:
    assert _load(tmp_path, "alerts_defaults = false\n").alerts == ()
    assert load_settings(env={"CALLPULSE_ALERTS_DEFAULTS": "0"}).alerts == ()


def test_a_rule_of_a_default_name_replaces_or_disables_it(tmp_path: Path) -> None:
    rules = _load(
        tmp_path,
        '[[alerts]]\nname = "success-rate"\nenabled = false\n'
        '[[alerts]]\nname = "poor-calls"\nmetric = "poor_rate"\ntrigger = 0.3\n',
    ).alerts
    by_name = {r.name: r for r in rules}
    assert not by_name["success-rate"].enabled
    assert by_name["poor-calls"].trigger == 0.3
    assert by_name["poor-calls"].reset == 0.1  # the default's other keys stay
    assert by_name["poor-calls"].per == "to"


def test_a_complete_rule(tmp_path: Path) -> None:
    (rule,) = _load(
        tmp_path,
        "alerts_defaults = false\n"
        "[[alerts]]\n"
        'name = "sales-answer"\nmetric = "success_rate"\n'
        'scope = { to = "+18005559876", region = "us" }\n'
        'window = "10m"\nmin_calls = 5\ntrigger = 0.9\nreset = 0.95\n'
        'for = "2m"\nrepeat = "30m"\nseverity = "critical"\n',
    ).alerts
    assert rule.scope == (("to", "+18005559876"), ("region", "US"))
    assert rule.scope_label == "to=+18005559876,region=US"
    assert rule.window == timedelta(minutes=10)
    assert rule.for_ == timedelta(minutes=2)
    assert rule.repeat == timedelta(minutes=30)
    assert (rule.trigger, rule.reset, rule.min_calls, rule.severity) == (0.9, 0.95, 5, "critical")


def test_volume_rule_factors(tmp_path: Path) -> None:
    (rule,) = _load(
        tmp_path,
        'alerts_defaults = false\n[[alerts]]\nname = "v"\nmetric = "volume"\nfactor = 4\n'
        'baseline_weeks = 2\ndirection = "drop"\n',
    ).alerts
    assert (rule.factor, rule.reset_factor, rule.baseline_weeks, rule.direction) == (
        4.0, 1.5, 2, "drop",
    )  # fmt: skip


def test_a_silent_line_rule_needs_no_thresholds(tmp_path: Path) -> None:
    (rule,) = _load(
        tmp_path,
        'alerts_defaults = false\n[[alerts]]\nname = "quiet"\nmetric = "no_data"\nper = "to"\n',
    ).alerts
    assert (rule.trigger, rule.reset, rule.per, rule.baseline_weeks) == (0, 1, "to", 4)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('metric = "success_rate"\ntrigger = 0.9\n', r"alert rule #1: name: required"),
        ('name = "x"\n', r"alert rule 'x': metric: required: one of success_rate"),
        ('name = "x"\nmetric = "latency"\n', r"'x': metric: expected one of success_rate"),
        ('name = "x"\nmetric = "success_rate"\n', r"'x': trigger: required"),
        ('name = "x"\nmetric = "success_rate"\ntrigger = 1.5\n', r"'x': trigger: a rate is"),
        (
            'name = "x"\nmetric = "success_rate"\ntrigger = 0.9\nreset = 0.8\n',
            r"'x': reset: must be at least trigger \(0.9\)",
        ),
        (
            'name = "x"\nmetric = "poor_rate"\ntrigger = 0.2\nreset = 0.3\n',
            r"'x': reset: must be at most trigger",
        ),
        ('name = "x"\nmetric = "mos_p50"\ntrigger = 7\n', r"'x': trigger: a MOS is between"),
        ('name = "x"\nmetric = "volume"\nwindow = "15 minutes"\n', r"'x': window: expected a span"),
        ('name = "x"\nmetric = "volume"\nwindow = "0m"\n', r"'x': window: must be longer than 0"),
        ('name = "x"\nmetric = "volume"\nfactor = 1\n', r"'x': factor: must be more than 1"),
        ('name = "x"\nmetric = "volume"\nmin_calls = -1\n', r"'x': min_calls: expected a whole"),
        ('name = "x"\nmetric = "volume"\nper = "from"\n', r"'x': per: expected one of to"),
        ('name = "x"\nmetric = "volume"\nseverity = "page"\n', r"'x': severity: expected one of"),
        ('name = "x"\nmetric = "volume"\ntreshold = 2\n', r"'x': treshold: unknown key"),
        ('name = "x"\nmetric = "volume"\nscope = "US"\n', r"'x': scope: expected \"all\""),
        (
            'name = "x"\nmetric = "volume"\nscope = { to = "sales" }\n',
            r"'x': scope.to: expected an E.164 number",
        ),
        ('name = "x"\nmetric = "volume"\nenabled = "no"\n', r"'x': enabled: expected true or"),
        ('name = "x"\nmetric = "volume"\ntrigger = 0.5\n', r"'x': trigger: not for volume rules"),
        (
            'name = "x"\nmetric = "mos_p50"\ntrigger = 3\nfactor = 2\n',
            r"'x': factor: not for mos_p50 rules \(only volume\)",
        ),
    ],
)
def test_errors_name_the_rule_and_key(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _load(tmp_path, "[[alerts]]\n" + body)
    assert str(tmp_path / "callpulse.toml") in str(info.value)


def test_a_name_used_twice(tmp_path: Path) -> None:
    rule = '[[alerts]]\nname = "x"\nmetric = "volume"\n'
    with pytest.raises(ConfigError, match="alert rule 'x': name: used twice"):
        _load(tmp_path, rule + rule)


def test_alerts_must_be_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="alerts: expected \\[\\[alerts\\]\\] tables"):
        _load(tmp_path, 'alerts = "all"\n')


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400)]
)
def test_spans(text: str, seconds: int) -> None:
    assert parse_span(text) == timedelta(seconds=seconds)
    assert parse_span(format_span(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


def test_alert_settings_from_environment() -> None:
    settings = load_settings(
        env={
            "CALLPULSE_ALERT_INTERVAL_S": "0",
            "CALLPULSE_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
            "CALLPULSE_ALERT_WEBHOOK_SECRET": "s3cret",
        }
    )
    assert settings.alert_interval_s == 0
    assert settings.alert_webhook_url == "http://127.0.0.1:9/hook"
    with pytest.raises(ConfigError, match="CALLPULSE_ALERT_WEBHOOK_URL: must start with http"):
        load_settings(env={"CALLPULSE_ALERT_WEBHOOK_URL": "hooks.example/x"})
