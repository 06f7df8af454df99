"""Settings from CALLPULSE_* environment variables and an optional TOML file.

Precedence: command-line flags > environment > TOML file > defaults. The TOML file uses the
setting names without the prefix in lower case (``database_url = "sqlite:///calls.db"``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callpulse.errors import CallpulseError
from callpulse.logs import LOG_FORMATS
from callpulse.signature import SigningKeys
from callpulse.timezones import zone

if TYPE_CHECKING:
    from callpulse.alerts.rules import Rule

PREFIX = "CALLPULSE_"
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA", "OFF")


class ConfigError(CallpulseError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///callpulse.db"
    signing_keys: SigningKeys = dataclasses.field(default_factory=SigningKeys)
    public_url: str = ""
    callback_path: str = "/callbacks/call-status"
    spool_dir: Path = Path("callpulse-spool")
    max_body_bytes: int = 65536
    sqlite_synchronous: str = "FULL"
    busy_timeout_ms: int = 1000
    writer_max_batch: int = 512
    quarantine_max_entries: int = 10000
    quarantine_retention_days: int = 30
    quarantine_max_body_bytes: int = 16384  # of each entry's body (body_size keeps the size)
    quarantine_max_bytes: int = 64 * 1024 * 1024  # of all entries: the oldest go beyond this
    api_token: str = ""  # guards the JSON API and the dashboard
    poor_mos: float = 3.5  # calls below this MOS count as poor
    short_call_s: int = 10  # completed calls shorter than this count as short
    timezone: str = "UTC"  # the call center's own zone: the dashboard's default, its day buckets
    target_success_rate: float = 0.95  # the dashboard marks lines below this
    max_poor_rate: float = 0.05  # the dashboard marks lines with more poor calls than this
    reconcile_interval_s: int = 0  # 0: serve does not reconcile by itself
    refuse_uncovered_bodies: bool = False  # refuse signatures over the URL alone (JSON bodies)
    max_header_bytes: int = 16384  # request line and headers; larger ones get 431
    request_timeout_s: float = 10.0  # from a request's first byte to its last
    log_format: str = "text"  # or "json": one object a line, for log pipelines
    access_log_per_s: int = 10  # callback lines a second at most, the rest summed up; 0: none
    alerts: tuple[Rule, ...] = dataclasses.field(default_factory=lambda: _alert_rules(None, True))
    alerts_defaults: bool = True  # the shipped rules (alerts/rules.py DEFAULT_RULES)
    alert_interval_s: int = 60  # serve evaluates the rules this often; 0: never by itself
    alert_webhook_url: str = ""  # firing and resolving are POSTed here as JSON
    alert_webhook_secret: str = ""  # signs each POST (X-Callpulse-Signature)


def _alert_rules(tables: object, defaults: bool, source: str = "config") -> tuple[Rule, ...]:
    # Imported here: the rules check scopes with analytics, which reads settings from here.
    from callpulse.alerts.rules import RuleError, parse_rules

    try:
        return parse_rules(tables, defaults)
    except RuleError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _int_at_least(minimum: int) -> Callable[[str, object], int]:
    def parse(name: str, raw: object) -> int:
        try:
            value = int(str(raw))
        except ValueError:
            raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _boolean(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _positive_seconds(name: str, raw: object) -> float:
    try:
        value = float(str(raw))
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds such as 10, got {raw!r}") from None
    if not 0 < value < float("inf"):
        raise ConfigError(f"{name}: must be more than 0 seconds, got {raw!r}")
    return value


def _log_format(name: str, raw: object) -> str:
    value = str(raw).lower()
    if value not in LOG_FORMATS:
        raise ConfigError(f"{name}: expected one of {', '.join(LOG_FORMATS)}, got {raw!r}")
    return value


def _synchronous(name: str, raw: object) -> str:
    value = str(raw).upper()
    if value not in SYNCHRONOUS_MODES:
        raise ConfigError(f"{name}: expected one of {', '.join(SYNCHRONOUS_MODES)}, got {raw!r}")
    return value


def _bounded(
    noun: str, example: str, low: float, high: float, note: str = ""
) -> Callable[[str, object], float]:
    """A parser of numbers from ``low`` to ``high``; the errors say what one looks like."""

    def parse(name: str, raw: object) -> float:
        try:
            value = float(str(raw))
        except ValueError:
            raise ConfigError(f"{name}: expected {noun} such as {example}, got {raw!r}") from None
        if not low <= value <= high:  # NaN too
            raise ConfigError(f"{name}: {noun} is between {low:g} and {high:g}{note}, got {value}")
        return value

    return parse


_mos = _bounded("a MOS", "3.5", 1, 5)
_share = _bounded("a share", "0.95", 0, 1, " (0.95 is 95 %)")


def _timezone(name: str, raw: object) -> str:
    try:
        return zone(str(raw)).key
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


MIN_API_TOKEN_LENGTH = 16


def _api_token(name: str, raw: object) -> str:
    value = str(raw)
    if value and len(value) < MIN_API_TOKEN_LENGTH:
        raise ConfigError(
            f"{name}: too short to keep guessers out ({len(value)} characters); use a random "
            f"value of at least {MIN_API_TOKEN_LENGTH}, e.g. the output of "
            "python3 -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    return value


def _public_url(name: str, raw: object) -> str:
    value = str(raw).rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"{name}: must start with http:// or https:// (the base URL the sender calls), "
            f"got {raw!r}"
        )
    return value


def _callback_path(name: str, raw: object) -> str:
    value = str(raw)
    if not value.startswith("/"):
        raise ConfigError(f"{name}: must start with '/', got {raw!r}")
    return value


def _webhook_url(name: str, raw: object) -> str:
    value = str(raw)
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name}: must start with http:// or https://, got {raw!r}")
    return value


def _signing_keys(name: str, raw: object) -> SigningKeys:
    try:
        return SigningKeys.parse(str(raw))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "database_url": lambda _name, raw: str(raw),
    "signing_keys": _signing_keys,
    "public_url": _public_url,
    "callback_path": _callback_path,
    "spool_dir": lambda _name, raw: Path(str(raw)),
    "max_body_bytes": _positive_int,
    "sqlite_synchronous": _synchronous,
    "busy_timeout_ms": _positive_int,
    "writer_max_batch": _positive_int,
    "quarantine_max_entries": _positive_int,
    "quarantine_retention_days": _positive_int,
    "quarantine_max_body_bytes": _positive_int,
    "quarantine_max_bytes": _positive_int,
    "api_token": _api_token,
    "poor_mos": _mos,
    "short_call_s": _non_negative_int,
    "timezone": _timezone,
    "target_success_rate": _share,
    "max_poor_rate": _share,
    "reconcile_interval_s": _non_negative_int,
    "refuse_uncovered_bodies": _boolean,
    "max_header_bytes": _int_at_least(1024),
    "request_timeout_s": _positive_seconds,
    "log_format": _log_format,
    "access_log_per_s": _non_negative_int,
    "alerts_defaults": _boolean,
    "alert_interval_s": _non_negative_int,
    "alert_webhook_url": _webhook_url,
    "alert_webhook_secret": lambda _name, raw: str(raw),
}
_TABLES = ("alerts",)  # TOML-only settings: arrays of tables


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found (check CALLPULSE_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - set(_PARSERS) - set(_TABLES))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting {unknown[0]!r} "
            f"(known: {', '.join(sorted([*_PARSERS, *_TABLES]))})"
        )
    return data


def load_settings(
    env: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    env = os.environ if env is None else env
    if config_file is None and env.get(PREFIX + "CONFIG"):
        config_file = Path(env[PREFIX + "CONFIG"])
    values: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    if config_file is not None:
        for key, raw in _read_toml(config_file).items():
            if key in _TABLES:
                tables[key] = raw
            else:
                values[key] = _PARSERS[key](f"{key} (in {config_file})", raw)
    for key, parse in _PARSERS.items():
        env_name = PREFIX + key.upper()
        if env_name in env:
            values[key] = parse(env_name, env[env_name])
    values["alerts"] = _alert_rules(
        tables.get("alerts"),
        values.get("alerts_defaults", True),
        f"config file {config_file}" if config_file is not None else "config",
    )
    return Settings(**values)
