"""Running migrations: which are applied (the ``migrations`` table), and the pending ones applied
in one transaction under the dialect's migration lock, with a progress call before each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callpulse.store.dialect import Dialect

# A step is SQL, or a function of the open connection (sqlite3 or psycopg) for what SQL can't do.
Step = str | Callable[[Any], None]
# Called before each pending migration: its name, its place among them (from 1), how many.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[Step, ...]


def run_step(conn: Any, step: Step) -> None:
    if isinstance(step, str):
        conn.execute(step)
    else:
        step(conn)


def applied(conn: Any, dialect: Dialect) -> dict[str, datetime]:
    """The applied migrations and when (the table is created if missing)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations "
        f"(name TEXT PRIMARY KEY, applied_at {dialect.stamp_type} NOT NULL)"
    )
    rows = conn.execute("SELECT name, applied_at FROM migrations").fetchall()
    return {name: dialect.decode_stamp(at) for name, at in rows}


def pending(conn: Any, dialect: Dialect, migrations: Sequence[Migration]) -> list[Migration]:
    done = applied(conn, dialect)
    return [m for m in migrations if m.name not in done]


def apply_pending(
    conn: Any, dialect: Dialect, migrations: Sequence[Migration], progress: Progress | None
) -> list[str]:
    """In the caller's transaction: take the lock, then apply what is still pending (another
    process may have applied it while this one waited for the lock)."""
    if dialect.migration_lock:
        conn.execute(dialect.migration_lock)
    todo = pending(conn, dialect, migrations)
    p = dialect.param
    for place, migration in enumerate(todo, 1):
        if progress is not None:
            progress(migration.name, place, len(todo))
        for step in migration.statements:
            run_step(conn, step)
        conn.execute(
            f"INSERT INTO migrations (name, applied_at) VALUES ({p}, {p})",
            (migration.name, dialect.encode_stamp(datetime.now(UTC))),
        )
    return [m.name for m in todo]
