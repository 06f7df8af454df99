"""Alert state, history, silences and the notification outbox: one SQL for both backends.

Times are epoch milliseconds on both (as rollup buckets are), so the statements differ only in
their placeholder; each method runs inside the caller's transaction (``Store.alert_book``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from callpulse.alerts.evaluate import OK, AlertState, Key, Transition
from callpulse.store.dialect import Dialect, from_epoch_ms, to_epoch_ms

_STATE_COLUMNS = (
    "rule, scope, state, value, threshold, pending_since, started_at, resolved_at, notified_at, "
    "changed_at"
)
_HISTORY_COLUMNS = (
    "id, rule, scope, from_state, to_state, at, value, threshold, started_at, severity"
)


def tables(dialect: Dialect) -> list[str]:
    """Migration 0005: the alert tables on either backend."""
    i, r = dialect.int_type, dialect.real_type
    serial = dialect.serial_key
    return [
        f"""CREATE TABLE alert_states (
            rule TEXT NOT NULL, scope TEXT NOT NULL, state TEXT NOT NULL, value {r},
            threshold {r}, pending_since {i}, started_at {i}, resolved_at {i}, notified_at {i},
            changed_at {i}, PRIMARY KEY (rule, scope)
        )""",
        f"""CREATE TABLE alert_history (
            {serial}, rule TEXT NOT NULL, scope TEXT NOT NULL, from_state TEXT NOT NULL,
            to_state TEXT NOT NULL, at {i} NOT NULL, value {r}, threshold {r}, started_at {i},
            severity TEXT NOT NULL
        )""",
        "CREATE INDEX alert_history_by_rule ON alert_history (rule, at)",
        "CREATE INDEX alert_history_by_time ON alert_history (at)",
        f"CREATE TABLE alert_silences (rule TEXT PRIMARY KEY, until_ms {i} NOT NULL, "
        f"created_at {i} NOT NULL)",
        # One row per notification to send; claimed_until lets one process at a time try it.
        f"""CREATE TABLE alert_outbox (
            {serial}, history_id {i} NOT NULL, body TEXT NOT NULL, created_at {i} NOT NULL,
            next_attempt_at {i} NOT NULL, attempts integer NOT NULL DEFAULT 0,
            claimed_until {i}, delivered_at {i}, last_error TEXT
        )""",
        "CREATE INDEX alert_outbox_due ON alert_outbox (delivered_at, next_attempt_at)",
        "CREATE INDEX alert_outbox_by_time ON alert_outbox (created_at)",
    ]


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_epoch_ms(moment)


def _time(ms: Any) -> datetime | None:
    return None if ms is None else from_epoch_ms(int(ms))


@dataclass(frozen=True)
class HistoryRow:
    id: int
    transition: Transition


@dataclass(frozen=True)
class Silence:
    rule: str
    until: datetime
    created_at: datetime


@dataclass(frozen=True)
class OutboxItem:
    id: int
    history_id: int
    body: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


def _transition(row: tuple[Any, ...]) -> HistoryRow:
    hid, rule, scope, from_state, to_state, at, value, threshold, started_at, severity = row
    return HistoryRow(
        int(hid),
        Transition(
            rule,
            scope,
            from_state,
            to_state,
            from_epoch_ms(int(at)),
            value,
            threshold,
            _time(started_at),
            severity,
        ),
    )


class AlertBook:
    """The alert tables through one connection (sqlite3 or psycopg: both ``execute`` alike)."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn, self._p = conn, dialect.param

    def _rows(self, query: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(query.replace("?", self._p), tuple(params)).fetchall())

    def _run(self, query: str, params: Iterable[Any] = ()) -> int:
        return int(self._conn.execute(query.replace("?", self._p), tuple(params)).rowcount)

    # -- states -----------------------------------------------------------------------------

    def states(self) -> dict[Key, AlertState]:
        result = {}
        for row in self._rows(f"SELECT {_STATE_COLUMNS} FROM alert_states ORDER BY rule, scope"):
            rule, scope, state, value, threshold, *times = row
            pending, started, resolved, notified, changed = (_time(t) for t in times)
            result[(rule, scope)] = AlertState(
                rule, scope, state, value, threshold, pending, started, resolved, notified, changed
            )
        return result

    def save_states(
        self, states: Mapping[Key, AlertState], before: Mapping[Key, AlertState]
    ) -> None:
        """Write the states that differ from ``before``; a scope that never left ok is not
        stored at all (a round over many numbers writes only those alerting)."""
        for key, s in states.items():
            if before.get(key) == s or (key not in before and s.state == OK):
                continue
            self._run(
                f"INSERT INTO alert_states ({_STATE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (rule, scope) DO UPDATE SET state = excluded.state, "
                "value = excluded.value, threshold = excluded.threshold, "
                "pending_since = excluded.pending_since, started_at = excluded.started_at, "
                "resolved_at = excluded.resolved_at, notified_at = excluded.notified_at, "
                "changed_at = excluded.changed_at",
                (s.rule, s.scope, s.state, s.value, s.threshold, _ms(s.pending_since),
                 _ms(s.started_at), _ms(s.resolved_at), _ms(s.notified_at), _ms(s.changed_at)),
            )  # fmt: skip

    # -- history ----------------------------------------------------------------------------

    def add_history(self, t: Transition) -> int:
        (row,) = self._rows(
            "INSERT INTO alert_history (rule, scope, from_state, to_state, at, value, threshold, "
            "started_at, severity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (t.rule, t.scope, t.from_state, t.to_state, to_epoch_ms(t.at), t.value, t.threshold,
             _ms(t.started_at), t.severity),
        )  # fmt: skip
        return int(row[0])

    def history(self, limit: int = 50, rule: str | None = None) -> list[HistoryRow]:
        where, params = ("WHERE rule = ? ", [rule]) if rule is not None else ("", [])
        return [
            _transition(row)
            for row in self._rows(
                f"SELECT {_HISTORY_COLUMNS} FROM alert_history {where}ORDER BY id DESC LIMIT ?",
                [*params, limit],
            )
        ]

    # -- silences ---------------------------------------------------------------------------

    def silence(self, rule: str, until: datetime, now: datetime) -> None:
        self._run("DELETE FROM alert_silences WHERE until_ms <= ?", (to_epoch_ms(now),))
        self._run(
            "INSERT INTO alert_silences (rule, until_ms, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (rule) DO UPDATE SET until_ms = excluded.until_ms, "
            "created_at = excluded.created_at",
            (rule, to_epoch_ms(until), to_epoch_ms(now)),
        )

    def unsilence(self, rule: str) -> bool:
        return self._run("DELETE FROM alert_silences WHERE rule = ?", (rule,)) > 0

    def silences(self, now: datetime) -> list[Silence]:
        """The silences in force (expired ones go at the next ``silence`` or ``prune``)."""
        return [
            Silence(rule, from_epoch_ms(int(until)), from_epoch_ms(int(created)))
            for rule, until, created in self._rows(
                "SELECT rule, until_ms, created_at FROM alert_silences WHERE until_ms > ? "
                "ORDER BY rule",
                (to_epoch_ms(now),),
            )
        ]

    def prune(self, now: datetime, keep: timedelta) -> None:
        """Forget history and notifications older than ``keep`` (undelivered ones too: a
        receiver down that long gets no stale news), and expired silences."""
        cutoff = to_epoch_ms(now - keep)
        self._run("DELETE FROM alert_history WHERE at < ?", (cutoff,))
        self._run("DELETE FROM alert_outbox WHERE created_at < ?", (cutoff,))
        self._run("DELETE FROM alert_silences WHERE until_ms <= ?", (to_epoch_ms(now),))

    # -- outbox -----------------------------------------------------------------------------

    def enqueue(self, history_id: int, body: str, now: datetime) -> None:
        self._run(
            "INSERT INTO alert_outbox (history_id, body, created_at, next_attempt_at) "
            "VALUES (?, ?, ?, ?)",
            (history_id, body, to_epoch_ms(now), to_epoch_ms(now)),
        )

    def due(self, now: datetime, limit: int = 20) -> list[OutboxItem]:
        """Undelivered notifications whose next attempt is due and that nobody holds."""
        ms = to_epoch_ms(now)
        return [
            self._item(row)
            for row in self._rows(
                "SELECT id, history_id, body, attempts, next_attempt_at, delivered_at, last_error "
                "FROM alert_outbox WHERE delivered_at IS NULL AND next_attempt_at <= ? "
                "AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY id LIMIT ?",
                (ms, ms, limit),
            )
        ]

    def claim(self, item_id: int, now: datetime, until: datetime) -> bool:
        """Take a notification for one attempt; False when another process has it."""
        ms = to_epoch_ms(now)
        return (
            self._run(
                "UPDATE alert_outbox SET claimed_until = ? WHERE id = ? AND delivered_at IS NULL "
                "AND (claimed_until IS NULL OR claimed_until <= ?)",
                (to_epoch_ms(until), item_id, ms),
            )
            == 1
        )

    def delivered(self, item_id: int, now: datetime) -> None:
        self._run(
            "UPDATE alert_outbox SET delivered_at = ?, attempts = attempts + 1, "
            "claimed_until = NULL, last_error = NULL WHERE id = ?",
            (to_epoch_ms(now), item_id),
        )

    def failed(self, item_id: int, next_attempt_at: datetime, error: str) -> None:
        self._run(
            "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?, "
            "claimed_until = NULL, last_error = ? WHERE id = ?",
            (to_epoch_ms(next_attempt_at), error[:500], item_id),
        )

    def outbox(self, limit: int = 50) -> list[OutboxItem]:
        return [
            self._item(row)
            for row in self._rows(
                "SELECT id, history_id, body, attempts, next_attempt_at, delivered_at, last_error "
                "FROM alert_outbox ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        ]

    @staticmethod
    def _item(row: tuple[Any, ...]) -> OutboxItem:
        item_id, history_id, body, attempts, next_at, delivered, error = row
        return OutboxItem(int(item_id), int(history_id), body, int(attempts),
                          from_epoch_ms(int(next_at)), _time(delivered), error)  # fmt: skip
