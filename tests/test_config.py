from __future__ import annotations

from pathlib import Path

import pytest

from callpulse.config import ConfigError, Settings, load_settings


def test_defaults() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.database_url == "sqlite:///callpulse.db"
    assert settings.sqlite_synchronous == "FULL"
    assert settings.max_body_bytes == 65536


def test_environment_overrides_toml(tmp_path: Path) -> None:
    config = tmp_path / "callpulse.toml"
    config.write_text(
        'database_url = "sqlite:///from-file.db"\n'
        'signing_keys = "AC1=k1,AC1=k2"\n'
        "max_body_bytes = 1000\n"
    )
    settings = load_settings(
        env={"CALLPULSE_MAX_BODY_BYTES": "2000", "CALLPULSE_PUBLIC_URL": "https://x.example/"},
        config_file=config,
    )
    assert settings.database_url == "sqlite:///from-file.db"
    assert settings.signing_keys.for_account("AC1") == ("k1", "k2")
    assert settings.max_body_bytes == 2000
    assert settings.public_url == "https://x.example"


def test_dashboard_settings() -> None:
    settings = load_settings(
        env={
            "CALLPULSE_TIMEZONE": "Europe/Berlin",
            "CALLPULSE_TARGET_SUCCESS_RATE": "0.9",
            "CALLPULSE_MAX_POOR_RATE": "0.1",
        }
    )
    assert (settings.timezone, settings.target_success_rate, settings.max_poor_rate) == (
        "Europe/Berlin",
        0.9,
        0.1,
    )


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('callback_path = "/hooks/status"\n')
    assert load_settings(env={"CALLPULSE_CONFIG": str(config)}).callback_path == "/hooks/status"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CALLPULSE_MAX_BODY_BYTES": "lots"}, "CALLPULSE_MAX_BODY_BYTES: expected a whole number"),
        ({"CALLPULSE_WRITER_MAX_BATCH": "0"}, "CALLPULSE_WRITER_MAX_BATCH: must be at least 1"),
        ({"CALLPULSE_SQLITE_SYNCHRONOUS": "fast"}, "CALLPULSE_SQLITE_SYNCHRONOUS: expected one"),
        ({"CALLPULSE_PUBLIC_URL": "calls.example"}, "CALLPULSE_PUBLIC_URL: must start with"),
        ({"CALLPULSE_CALLBACK_PATH": "hooks"}, "CALLPULSE_CALLBACK_PATH: must start with '/'"),
        ({"CALLPULSE_SIGNING_KEYS": "AC1="}, "CALLPULSE_SIGNING_KEYS: expected AccountSid=key"),
        ({"CALLPULSE_MAX_HEADER_BYTES": "100"}, "CALLPULSE_MAX_HEADER_BYTES: must be at least"),
        ({"CALLPULSE_REQUEST_TIMEOUT_S": "soon"}, "CALLPULSE_REQUEST_TIMEOUT_S: expected a number"),
        ({"CALLPULSE_REQUEST_TIMEOUT_S": "0"}, "CALLPULSE_REQUEST_TIMEOUT_S: must be more than 0"),
        (
            {"CALLPULSE_REQUEST_TIMEOUT_S": "nan"},
            "CALLPULSE_REQUEST_TIMEOUT_S: must be more than 0",
        ),
        ({"CALLPULSE_TIMEZONE": "CET+1"}, "CALLPULSE_TIMEZONE: unknown time zone 'CET\\+1'"),
        ({"CALLPULSE_TIMEZONE": "America"}, "such as Europe/Berlin"),
        ({"CALLPULSE_TARGET_SUCCESS_RATE": "95"}, "TARGET_SUCCESS_RATE: a share is between 0"),
        ({"CALLPULSE_MAX_POOR_RATE": "nan"}, "CALLPULSE_MAX_POOR_RATE: a share is between 0"),
        ({"CALLPULSE_MAX_POOR_RATE": "few"}, "CALLPULSE_MAX_POOR_RATE: expected a share"),
    ],
)
def test_errors_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env=env)


def test_toml_errors_name_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("databse_url = 'x'\n")
    with pytest.raises(ConfigError, match="unknown setting 'databse_url'"):
        load_settings(env={}, config_file=config)
    config.write_text("max_body_bytes = 'x'\n")
    with pytest.raises(ConfigError, match=r"max_body_bytes \(in .*c.toml\)"):
        load_settings(env={}, config_file=config)
    config.write_text("= broken")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(env={}, config_file=config)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={}, config_file=tmp_path / "missing.toml")


def test_a_short_api_token_is_refused_with_the_fix() -> None:
    fix = r"CALLPULSE_API_TOKEN: too short.*secrets\.token_urlsafe"
    with pytest.raises(ConfigError, match=fix):
        load_settings({"CALLPULSE_API_TOKEN": "secret"})
    assert load_settings({"CALLPULSE_API_TOKEN": "x" * 16}).api_token == "x" * 16
    assert load_settings({"CALLPULSE_API_TOKEN": ""}).api_token == ""  # unset: API closed
