"""Storage backends behind one interface; ``open_store`` picks one from the database URL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from callpulse.config import ConfigError, Settings
from callpulse.store.base import Store
from callpulse.store.errors import StoreUnavailable

__all__ = ["Store", "StoreUnavailable", "open_store", "sqlite_path", "without_password"]

SQLITE_PREFIX = "sqlite:///"


def without_password(url: str) -> str:
    """The database URL for messages and logs: any password (user info or query) as ***."""
    parts = urlsplit(url)
    if parts.password is None and "password=" not in parts.query.lower():
        return url  # (urlunsplit would turn sqlite:///x into sqlite:/x)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(
        f"{name}=***" if name.lower() == "password" else f"{name}={quote(value)}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite database URL; None for any other backend."""
    return Path(url.removeprefix(SQLITE_PREFIX)) if url.startswith(SQLITE_PREFIX) else None


def open_store(settings: Settings) -> Store:
    from callpulse.store.core import QuarantineLimits

    url = settings.database_url
    path = sqlite_path(url)
    limits = QuarantineLimits(
        max_entries=settings.quarantine_max_entries,
        retention=timedelta(days=settings.quarantine_retention_days),
        max_body_bytes=settings.quarantine_max_body_bytes,
        max_bytes=settings.quarantine_max_bytes,
    )
    if path is not None:
        from callpulse.store.sqlite import SQLiteStore

        return SQLiteStore(
            path,
            synchronous=settings.sqlite_synchronous,
            busy_timeout_ms=settings.busy_timeout_ms,
            quarantine_limits=limits,
        )
    if url.startswith(("postgresql://", "postgres://")):
        from callpulse.store.postgres import PostgresStore

        return PostgresStore(
            url,
            quarantine_limits=limits,
        )
    raise ConfigError(
        f"CALLPULSE_DATABASE_URL: unsupported database URL {url.split('@')[-1]!r} "
        "(use sqlite:///path/to/file.db or postgresql://user@host:5432/dbname)"
    )
