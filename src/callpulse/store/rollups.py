"""Rollups: per-bucket counters and histograms kept in step with ``calls`` by triggers.

Three levels (minute, hour, day), each with four tables (see ``FAMILIES``):
- ``rollup_<level>``: per (bucket, account, called number, caller region) counts by status,
  talk time, MOS sum and count, repeat calls;
- ``rollup_<level>_hist``: per (bucket, account, called number) histograms of MOS (0.01 bins)
  and duration (``DURATION_BIN_SQL`` bins) of completed calls, for percentiles and bands;
- ``rollup_<level>_total`` and ``rollup_<level>_total_hist``: the same per (bucket, account)
  only, so whole-account questions over long ranges read a few rows per bucket.

Triggers add every inserted call and move updated ones (old out, new in), inside the writing
transaction, so rollups always equal a recomputation from ``calls``; pruning calls keeps their
rollups. SQLite runs them per row (cheap compiled statements); PostgreSQL per statement over the
transition tables (one aggregate upsert per table and batch). Buckets are epoch milliseconds in
both backends, so queries over rollups are the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callpulse.store.dialect import POSTGRES, REPEAT_WINDOW_MS, SQLITE, Dialect

LEVELS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
WITHHELD = "withheld"
MOS_KIND, DURATION_KIND = 0, 1
METRICS = (
    "calls",
    "completed",
    "failed",
    "duration_s",
    "mos_sum",
    "mos_n",
    "repeats",
    "duration_n",
    "problems",
)
GROUP_KEYS = ("account_sid", "to_number", "region")
HIST_KEYS = ("account_sid", "to_number")

# Whole seconds up to a minute (short-call thresholds are exact there), then ever coarser.
DURATION_BIN_SQL = (
    "CASE WHEN {d} < 60 THEN {d} WHEN {d} < 600 THEN {d} / 5 * 5 "
    "WHEN {d} < 3600 THEN {d} / 60 * 60 ELSE {d} / 600 * 600 END"
)


def duration_bin_width(lower: int) -> int:
    """The width of the duration bin starting at ``lower`` (mirrors DURATION_BIN_SQL)."""
    return 1 if lower < 60 else 5 if lower < 600 else 60 if lower < 3600 else 600


def metric_exprs(row: str) -> dict[str, str]:
    """Each metric's contribution of one calls row (``row`` is its alias: new, old, c); the
    same SQL on both backends (is_repeat is boolean on PostgreSQL, 0/1 on SQLite)."""
    completed = f"{row}.status = 'completed'"
    rated = f"{completed} AND {row}.mos IS NOT NULL"
    timed = f"{completed} AND {row}.duration_s IS NOT NULL"
    return {
        "calls": "1",
        "completed": f"CASE WHEN {completed} THEN 1 ELSE 0 END",
        "failed": f"CASE WHEN {row}.status = 'failed' THEN 1 ELSE 0 END",
        "duration_s": f"CASE WHEN {timed} THEN {row}.duration_s ELSE 0 END",
        "mos_sum": f"CASE WHEN {rated} THEN {row}.mos ELSE 0 END",
        "mos_n": f"CASE WHEN {rated} THEN 1 ELSE 0 END",
        "repeats": f"CASE WHEN {row}.is_repeat THEN 1 ELSE 0 END",
        "duration_n": f"CASE WHEN {timed} THEN 1 ELSE 0 END",
        "problems": f"CASE WHEN {row}.problems <> '[]' THEN 1 ELSE 0 END",
    }


def hist_sources(row: str, dialect: Dialect) -> list[tuple[int, str, str]]:
    """(kind, bin expression, condition) of the histograms one calls row feeds."""
    completed = f"{row}.status = 'completed'"
    return [
        (
            MOS_KIND,
            dialect.mos_bin.format(m=f"{row}.mos"),
            f"{completed} AND {row}.mos IS NOT NULL",
        ),
        (
            DURATION_KIND,
            DURATION_BIN_SQL.format(d=f"{row}.duration_s"),
            f"{completed} AND {row}.duration_s IS NOT NULL",
        ),
    ]


@dataclass(frozen=True)
class Family:
    """One kind of rollup table, present at every level."""

    suffix: str
    keys: tuple[str, ...]
    hist: bool

    def table(self, level: str) -> str:
        return f"rollup_{level}{self.suffix}"


FAMILIES = (
    Family("", GROUP_KEYS, hist=False),
    Family("_hist", HIST_KEYS, hist=True),
    Family("_total", ("account_sid",), hist=False),
    Family("_total_hist", ("account_sid",), hist=True),
)


def _slot_column(dialect: Dialect) -> list[str]:
    return ["slot"] if dialect.slot else []


def _key_columns(family: Family, dialect: Dialect) -> list[str]:
    return [
        "bucket",
        *family.keys,
        *(["kind", "bin"] if family.hist else []),
        *_slot_column(dialect),
    ]


# The metrics of migration 0002; 0003 added the rest. Migrations name theirs, so that what an
# old migration creates does not change as metrics are added.
METRICS_0002 = METRICS[:7]


def _value_columns(family: Family, metrics: tuple[str, ...] = METRICS) -> tuple[str, ...]:
    return ("n",) if family.hist else metrics


def tables(dialect: Dialect, metrics: tuple[str, ...] = METRICS) -> list[str]:
    i, r = dialect.int_type, dialect.real_type
    types = {"bucket": i, "kind": "integer", "bin": "integer", "slot": "integer", "mos_sum": r}
    statements = []
    for level in LEVELS:
        for family in FAMILIES:
            keys = _key_columns(family, dialect)
            columns = [f"{c} {types.get(c, 'TEXT')} NOT NULL" for c in keys]
            columns += [f"{c} {types.get(c, i)} NOT NULL" for c in _value_columns(family, metrics)]
            statements.append(
                f"CREATE TABLE {family.table(level)} ({', '.join(columns)}, "
                f"PRIMARY KEY ({', '.join(keys)})){dialect.table_suffix}"
            )
    return statements


def _upsert(table: str, keys: list[str], values: tuple[str, ...]) -> str:
    updates = ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in values)
    return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"


def _bucket(row: str, size: int, dialect: Dialect) -> str:
    ms = dialect.ms(f"{row}.started_at")
    return f"{ms} - {ms} % {size}"


def _upserts(
    row: str,
    dialect: Dialect,
    value: Callable[[str], str],
    source: str,
    slot: list[str],
    metrics: tuple[str, ...],
    levels: tuple[str, ...] = tuple(LEVELS),
    families: tuple[Family, ...] = FAMILIES,
) -> list[str]:
    """One upsert per rollup table (two per histogram table: MOS and duration) of what ``row``
    contributes; ``value`` wraps each contribution (signed, or summed over ``source``)."""
    statements = []
    for level in levels:
        size = LEVELS[level]
        for family in families:
            table, keys = family.table(level), _key_columns(family, dialect)
            columns = _value_columns(family, metrics)
            exprs = metric_exprs(row)
            head = [_bucket(row, size, dialect), *(f"{row}.{k}" for k in family.keys)]
            parts = (
                [([*head, str(kind), bin_expr], [value("1")], condition)
                 for kind, bin_expr, condition in hist_sources(row, dialect)]
                if family.hist
                else [(head, [value(exprs[m]) for m in metrics], dialect.true)]
            )  # fmt: skip
            for key_values, values, condition in parts:
                group_by = (
                    f" GROUP BY {', '.join(str(n) for n in range(1, len(key_values) + 1))}"
                    if source
                    else ""
                )
                # (the WHERE also lets SQLite parse INSERT ... SELECT ... ON CONFLICT)
                statements.append(
                    f"INSERT INTO {table} ({', '.join([*keys, *columns])}) "
                    f"SELECT {', '.join([*key_values, *slot, *values])}{source} "
                    f"WHERE {condition}{group_by} " + _upsert(table, keys, columns)
                )
    return statements


def row_statements(
    row: str, sign: int, dialect: Dialect, metrics: tuple[str, ...] = METRICS
) -> list[str]:
    """Add (sign 1) or remove (sign -1) one calls row: the body of a row trigger."""
    slot = [dialect.slot] if dialect.slot else []
    return _upserts(row, dialect, lambda e: f"{sign} * ({e})", "", slot, metrics)


def aggregate_statements(
    source: str,
    dialect: Dialect,
    slot_value: str | None = None,
    metrics: tuple[str, ...] = METRICS,
    levels: tuple[str, ...] = tuple(LEVELS),
    families: tuple[Family, ...] = FAMILIES,
) -> list[str]:
    """Add every row of ``source`` (calls columns plus ``sign``: 1 adds, -1 removes)."""
    slot = [slot_value or dialect.slot or ""] if dialect.slot else []

    def summed(contribution: str) -> str:
        return f"sum(c.sign * ({contribution}))"

    return _upserts("c", dialect, summed, f" FROM {source} c", slot, metrics, levels, families)


def _summed_from(
    level: str, family: Family, source: str, dialect: Dialect, metrics: tuple[str, ...], since: str
) -> str:
    """Fill ``family``'s table at ``level`` by summing ``source``, a rollup table of the same
    calls in finer buckets or finer groups (rollups are sums); from bucket ``since`` on."""
    table, keys = family.table(level), _key_columns(family, dialect)
    columns = _value_columns(family, metrics)
    size = LEVELS[level]
    group = [f"bucket - bucket % {size}", *family.keys, *(["kind", "bin"] if family.hist else [])]
    slot = ["0"] if dialect.slot else []  # (every slot's rows summed into one)
    numbers = ", ".join(str(n) for n in range(1, len(group) + 1))
    return (
        f"INSERT INTO {table} ({', '.join([*keys, *columns])}) "
        f"SELECT {', '.join([*group, *slot, *(f'sum({c})' for c in columns)])} FROM {source} "
        f"WHERE bucket >= {since} GROUP BY {numbers} " + _upsert(table, keys, columns)
    )


def build_statements(
    dialect: Dialect, metrics: tuple[str, ...] = METRICS, since: str = "0"
) -> list[str]:
    """Every rollup of the calls that started from bucket ``since`` (epoch ms, a whole day) on,
    into tables holding none of them: the minute buckets per group from ``calls`` (three scans
    of it), every other table summed from the next finer one (far fewer rows to read)."""
    grouped = tuple(f for f in FAMILIES if f.keys != ("account_sid",))
    statements = aggregate_statements(
        "(SELECT *, 1 AS sign FROM calls)", dialect, "0", metrics, ("minute",), grouped
    )
    finer: str | None = None
    for level in LEVELS:
        for family in grouped:
            if finer is not None:  # per group: from the level below
                source = family.table(finer)
                statements.append(_summed_from(level, family, source, dialect, metrics, since))
            total = next(f for f in FAMILIES if f.hist == family.hist and f not in grouped)
            source = family.table(level)  # per account: from the groups of the same level
            statements.append(_summed_from(level, total, source, dialect, metrics, since))
        finer = level
    return statements


def _later_repeats(row: str, dialect: Dialect, extra_from: str = "") -> str:
    """Calls from the same caller in the 24 h after ``row`` become repeats (a call that arrives
    late, or in the same batch, counts for the calls after it)."""
    window = dialect.repeat_window
    return (
        f"UPDATE calls SET is_repeat = {dialect.true}{extra_from} "
        f"WHERE calls.from_number = {row}.from_number AND calls.account_sid = {row}.account_sid "
        f"AND calls.started_at > {row}.started_at "
        f"AND calls.started_at <= {row}.started_at + {window} "
        f"AND calls.is_repeat = {dialect.false} AND {row}.from_number <> '{WITHHELD}'"
    )


def sqlite_triggers(metrics: tuple[str, ...] = METRICS) -> list[str]:
    add = ";\n".join(row_statements("new", 1, SQLITE, metrics))
    remove = ";\n".join(row_statements("old", -1, SQLITE, metrics))
    return [
        f"CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls BEGIN\n{add};\n"
        f"{_later_repeats('new', SQLITE)};\nEND",
        f"CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls BEGIN\n{remove};\n{add};\nEND",
    ]


def postgres_triggers(metrics: tuple[str, ...] = METRICS) -> list[str]:
    inserted = "(SELECT n.*, 1 AS sign FROM new_rows n)"
    moved = "(SELECT o.*, -1 AS sign FROM old_rows o UNION ALL SELECT n.*, 1 FROM new_rows n)"
    add = ";\n".join(aggregate_statements(inserted, POSTGRES, metrics=metrics))
    move = ";\n".join(aggregate_statements(moved, POSTGRES, metrics=metrics))
    return [
        # Without statistics on the transition table the planner would hash it and scan all of
        # calls for the repeat update; nested index lookups cost a few per inserted call.
        f"""CREATE FUNCTION calls_rollup_insert() RETURNS trigger LANGUAGE plpgsql
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
{add};
{_later_repeats("n", POSTGRES, " FROM new_rows n")};
RETURN NULL;
END $$""",
        f"""CREATE FUNCTION calls_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{move};
RETURN NULL;
END $$""",
        "CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls REFERENCING NEW TABLE AS "
        "new_rows FOR EACH STATEMENT EXECUTE FUNCTION calls_rollup_insert()",
        "CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls REFERENCING OLD TABLE AS "
        "old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION calls_rollup_update()",
    ]


def repeat_exists(row: str, dialect: Dialect) -> str:
    """Whether the caller of ``row`` called within the 24 h before it."""
    window = dialect.repeat_window
    return (
        f"({row}.from_number <> '{WITHHELD}' AND EXISTS (SELECT 1 FROM calls p "
        f"WHERE p.from_number = {row}.from_number AND p.account_sid = {row}.account_sid "
        f"AND p.started_at < {row}.started_at AND p.started_at >= {row}.started_at - {window}))"
    )


def earlier_calls(dialect: Dialect) -> str:
    """Every call of a caller that is not withheld, with how many of the caller's calls started in
    the 24 h before it (columns id, account_sid, from_number, started_at, earlier):
    ``repeat_exists`` for all calls at once, one sort instead of a lookup per call."""
    return (
        f"SELECT {dialect.row_id} AS id, account_sid, from_number, started_at, count(*) OVER ("
        f"PARTITION BY account_sid, from_number ORDER BY started_at {dialect.repeat_frame}"
        f") AS earlier FROM calls WHERE from_number <> '{WITHHELD}'"
    )


def refresh_repeats(dialect: Dialect) -> str:
    """Recompute the repeat flags of one caller's calls that started in a span; parameters:
    account, caller, span start and end (epoch ms). Run for a corrected call's old and new
    caller and start, so its flag and those of the calls after it stay true."""
    p, ms_param, flag = dialect.param, dialect.ms_param, _repeat_flag(dialect)
    return (
        f"UPDATE calls AS c SET is_repeat = {flag} WHERE c.account_sid = {p} "
        f"AND c.from_number = {p} AND c.started_at >= {ms_param} AND c.started_at <= {ms_param} "
        f"AND c.is_repeat <> {flag}"
    )


def _repeat_flag(dialect: Dialect) -> str:
    return dialect.flag(repeat_exists("c", dialect))


def rebuild_statements(dialect: Dialect, metrics: tuple[str, ...] = METRICS) -> list[str]:
    """Recompute repeat flags and every rollup from ``calls``; rollups of pruned calls stay."""
    # Pruning removes whole UTC days at least, so from the oldest stored call's day on every
    # bucket holds stored calls only; earlier buckets hold pruned calls only and stay.
    day = LEVELS["day"]
    oldest = f"(SELECT min({dialect.ms('started_at')}) FROM calls)"
    oldest_day = f"({oldest} - {oldest} % {day})"
    flag = _repeat_flag(dialect)
    statements = [
        # In the day after the oldest stored one the earlier call may have been pruned: a
        # repeat found then stays a repeat.
        f"UPDATE calls AS c SET is_repeat = {flag} WHERE is_repeat <> {flag} AND "
        f"({flag} = {dialect.true} "
        f"OR {dialect.ms('c.started_at')} >= {oldest_day} + {REPEAT_WINDOW_MS})"
    ]
    for level in LEVELS:
        for family in FAMILIES:
            statements.append(f"DELETE FROM {family.table(level)} WHERE bucket >= {oldest_day}")
    return statements + build_statements(dialect, metrics, oldest_day)
