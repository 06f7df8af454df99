"""Rollups: per-bucket counters and histograms kept in step with ``calls`` by triggers.

Three levels (minute, hour, day) of two tables each:
- ``rollup_<level>``: per (bucket, account, called number, caller region) counts by status,
  talk time, MOS sum and count, repeat calls;
- ``rollup_<level>_hist``: per (bucket, account, called number) histograms of MOS (0.01 bins)
  and duration (``DURATION_BIN_SQL`` bins) of completed calls, for percentiles and bands.

Triggers add every inserted call and move updated ones (old out, new in), inside the writing
transaction, so rollups always equal a recomputation from ``calls``; pruning calls keeps their
rollups. Buckets are epoch milliseconds in both backends, so queries over rollups are the same
SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
REPEAT_WINDOW_MS = 86_400_000  # a caller calling again within 24 h is a repeat caller
WITHHELD = "withheld"
MOS_KIND, DURATION_KIND = 0, 1
METRICS = ("calls", "completed", "failed", "duration_s", "mos_sum", "mos_n", "repeats")
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


@dataclass(frozen=True)
class Dialect:
    """What differs between the backends in rollup SQL."""

    name: str
    param: str  # placeholder
    int_type: str
    real_type: str
    table_suffix: str  # WITHOUT ROWID keeps SQLite rollups clustered by bucket
    ms_of: str  # epoch milliseconds of a call's started_at, "{c}" the column
    ms_param: str  # a call-time comparison value from an epoch-ms parameter
    mos_bin: str  # MOS to its 0.01 bin, "{m}" the value
    slot: str | None  # PostgreSQL: one set of rows per backend, so writers never contend
    row_id: str  # a calls column that orders calls with equal start times
    mod: str  # the modulo operator in a query with parameters (psycopg wants %% there)

    def ms(self, column: str) -> str:
        return self.ms_of.format(c=column)


SQLITE = Dialect(
    name="sqlite",
    param="?",
    int_type="INTEGER",
    real_type="REAL",
    table_suffix=" WITHOUT ROWID",
    ms_of="{c}",
    ms_param="?",
    mos_bin="CAST(round({m} * 100) AS INTEGER)",
    slot=None,
    row_id="id",
    mod="%",
)
POSTGRES = Dialect(
    name="postgres",
    param="%s",
    int_type="bigint",
    real_type="double precision",
    table_suffix="",
    ms_of="(extract(epoch FROM {c}) * 1000)::bigint",
    ms_param="to_timestamp(%s / 1000.0)",
    mos_bin="round({m} * 100)::integer",
    slot="pg_backend_pid()",
    row_id="call_id",
    mod="%%",
)


def metric_exprs(row: str, dialect: Dialect) -> dict[str, str]:
    """Each metric's contribution of one calls row (``row`` is its alias: new, old, c)."""
    completed = f"{row}.status = 'completed'"
    rated = f"{completed} AND {row}.mos IS NOT NULL"
    repeat = (
        f"CASE WHEN {row}.is_repeat THEN 1 ELSE 0 END"
        if dialect.name == "postgres"
        else f"{row}.is_repeat"
    )
    return {
        "calls": "1",
        "completed": f"CASE WHEN {completed} THEN 1 ELSE 0 END",
        "failed": f"CASE WHEN {row}.status = 'failed' THEN 1 ELSE 0 END",
        "duration_s": f"CASE WHEN {completed} THEN {row}.duration_s ELSE 0 END",
        "mos_sum": f"CASE WHEN {rated} THEN {row}.mos ELSE 0 END",
        "mos_n": f"CASE WHEN {rated} THEN 1 ELSE 0 END",
        "repeats": repeat,
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
        (DURATION_KIND, DURATION_BIN_SQL.format(d=f"{row}.duration_s"), completed),
    ]


def _slot_column(dialect: Dialect) -> list[str]:
    return ["slot"] if dialect.slot else []


def tables(dialect: Dialect) -> list[str]:
    statements = []
    i, r = dialect.int_type, dialect.real_type
    slot = _slot_column(dialect)
    for level in LEVELS:
        keys = ["bucket", *GROUP_KEYS, *slot]
        columns = [f"bucket {i} NOT NULL", "account_sid TEXT NOT NULL", "to_number TEXT NOT NULL"]
        columns += ["region TEXT NOT NULL", *(f"{s} integer NOT NULL" for s in slot)]
        columns += [f"{m} {r if m == 'mos_sum' else i} NOT NULL" for m in METRICS]
        statements.append(
            f"CREATE TABLE rollup_{level} ({', '.join(columns)}, "
            f"PRIMARY KEY ({', '.join(keys)})){dialect.table_suffix}"
        )
        hist_keys = ["bucket", *HIST_KEYS, "kind", "bin", *slot]
        hist_columns = [f"bucket {i} NOT NULL", "account_sid TEXT NOT NULL"]
        hist_columns += ["to_number TEXT NOT NULL", "kind integer NOT NULL", "bin integer NOT NULL"]
        hist_columns += [*(f"{s} integer NOT NULL" for s in slot), f"n {i} NOT NULL"]
        statements.append(
            f"CREATE TABLE rollup_{level}_hist ({', '.join(hist_columns)}, "
            f"PRIMARY KEY ({', '.join(hist_keys)})){dialect.table_suffix}"
        )
    return statements


def apply_statements(row: str, sign: int, dialect: Dialect) -> list[str]:
    """Statements adding (sign 1) or removing (sign -1) one calls row to every rollup."""
    statements = []
    ms = dialect.ms(f"{row}.started_at")
    slot = _slot_column(dialect)
    slot_value = [dialect.slot] if dialect.slot else []
    for level, size in LEVELS.items():
        bucket = f"{ms} - {ms} % {size}"
        metrics = metric_exprs(row, dialect)
        keys = ["bucket", *GROUP_KEYS, *slot]
        values = [bucket, *(f"{row}.{k}" for k in GROUP_KEYS), *slot_value]
        values += [f"{sign} * ({expr})" for expr in metrics.values()]
        updates = ", ".join(f"{m} = rollup_{level}.{m} + excluded.{m}" for m in METRICS)
        statements.append(
            f"INSERT INTO rollup_{level} ({', '.join([*keys, *METRICS])}) "
            f"VALUES ({', '.join(values)}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        )
        hist_keys = ["bucket", *HIST_KEYS, "kind", "bin", *slot]
        for kind, bin_expr, condition in hist_sources(row, dialect):
            hist_values = [bucket, *(f"{row}.{k}" for k in HIST_KEYS), str(kind), bin_expr]
            hist_values += [*slot_value, str(sign)]
            # (SQLite needs the WHERE to parse INSERT ... SELECT ... ON CONFLICT)
            statements.append(
                f"INSERT INTO rollup_{level}_hist ({', '.join([*hist_keys, 'n'])}) "
                f"SELECT {', '.join(hist_values)} WHERE {condition} "
                f"ON CONFLICT ({', '.join(hist_keys)}) DO UPDATE "
                f"SET n = rollup_{level}_hist.n + excluded.n"
            )
    return statements


def mark_later_repeats(row: str, dialect: Dialect) -> str:
    """Calls from the same caller in the 24 h after this one become repeats (a call that
    arrives late, or in the same batch, counts for the calls after it)."""
    later = f"started_at > {row}.started_at AND started_at <= {row}.started_at + " + (
        "interval '24 hours'" if dialect.name == "postgres" else str(REPEAT_WINDOW_MS)
    )
    flag_true, flag_false = ("true", "false") if dialect.name == "postgres" else ("1", "0")
    return (
        f"UPDATE calls SET is_repeat = {flag_true} WHERE from_number = {row}.from_number "
        f"AND account_sid = {row}.account_sid AND {later} AND is_repeat = {flag_false} "
        f"AND {row}.from_number <> '{WITHHELD}'"
    )


def sqlite_triggers() -> list[str]:
    add = ";\n".join(apply_statements("new", 1, SQLITE))
    remove = ";\n".join(apply_statements("old", -1, SQLITE))
    return [
        f"CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls BEGIN\n{add};\n"
        f"{mark_later_repeats('new', SQLITE)};\nEND",
        f"CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls BEGIN\n{remove};\n{add};\nEND",
    ]


def postgres_triggers() -> list[str]:
    add = ";\n".join(apply_statements("NEW", 1, POSTGRES))
    remove = ";\n".join(apply_statements("OLD", -1, POSTGRES))
    return [
        f"""CREATE FUNCTION calls_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{add};
{mark_later_repeats("NEW", POSTGRES)};
RETURN NULL;
END $$""",
        f"""CREATE FUNCTION calls_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{remove};
{add};
RETURN NULL;
END $$""",
        "CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls "
        "FOR EACH ROW EXECUTE FUNCTION calls_rollup_insert()",
        "CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls "
        "FOR EACH ROW EXECUTE FUNCTION calls_rollup_update()",
    ]


def repeat_exists(row: str, dialect: Dialect) -> str:
    """Whether the caller of ``row`` called within the 24 h before it."""
    window = "interval '24 hours'" if dialect.name == "postgres" else str(REPEAT_WINDOW_MS)
    return (
        f"({row}.from_number <> '{WITHHELD}' AND EXISTS (SELECT 1 FROM calls p "
        f"WHERE p.from_number = {row}.from_number AND p.account_sid = {row}.account_sid "
        f"AND p.started_at < {row}.started_at AND p.started_at >= {row}.started_at - {window}))"
    )


def rebuild_statements(dialect: Dialect) -> list[str]:
    """Recompute repeat flags and every rollup from ``calls``. Rollups of buckets before the
    oldest stored call's are kept: they outlive pruned calls."""
    flag = (
        f"CASE WHEN {repeat_exists('c', dialect)} THEN 1 ELSE 0 END"
        if dialect.name == "sqlite"
        else repeat_exists("c", dialect)
    )
    statements = [
        f"UPDATE calls AS c SET is_repeat = {flag} WHERE is_repeat <> {flag}",
    ]
    oldest = f"(SELECT min({dialect.ms('started_at')}) FROM calls)"
    slot = _slot_column(dialect)
    slot_value = ["0"] if dialect.slot else []
    for level, size in LEVELS.items():
        statements.append(f"DELETE FROM rollup_{level} WHERE bucket >= {oldest} - {size}")
        statements.append(f"DELETE FROM rollup_{level}_hist WHERE bucket >= {oldest} - {size}")
    for level, size in LEVELS.items():
        ms = dialect.ms("c.started_at")
        bucket = f"{ms} - {ms} % {size}"
        metrics = metric_exprs("c", dialect)
        sums = ", ".join(f"sum({expr})" for expr in metrics.values())
        keys = ["bucket", *GROUP_KEYS, *slot]
        statements.append(
            f"INSERT INTO rollup_{level} ({', '.join([*keys, *METRICS])}) "
            f"SELECT {bucket}, {', '.join(f'c.{k}' for k in GROUP_KEYS)}, "
            f"{''.join(v + ', ' for v in slot_value)}{sums} FROM calls c "
            f"GROUP BY {', '.join(str(n) for n in range(1, len(GROUP_KEYS) + 2))}"
        )
        hist_keys = ["bucket", *HIST_KEYS, "kind", "bin", *slot]
        for kind, bin_expr, condition in hist_sources("c", dialect):
            statements.append(
                f"INSERT INTO rollup_{level}_hist ({', '.join([*hist_keys, 'n'])}) "
                f"SELECT {bucket}, {', '.join(f'c.{k}' for k in HIST_KEYS)}, {kind}, "
                f"{bin_expr}, {''.join(v + ', ' for v in slot_value)}count(*) FROM calls c "
                f"WHERE {condition} GROUP BY 1, 2, 3, 5"
            )
    return statements
