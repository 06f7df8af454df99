"""Rollups: per-bucket counters and histograms of ``calls``, one description for both backends.

Four levels (minute, hour, day, week), each with five tables (see ``FAMILIES``):
- ``rollup_<level>``: per (bucket, account, called number, caller region) counts by status,
  talk time, MOS sum and count, repeat calls;
- ``rollup_<level>_hist``: per (bucket, account, called number) histograms of MOS (0.01 bins)
  and duration (``DURATION_BIN_SQL`` bins) of completed calls, for percentiles and bands; keyed
  by number first, so one number's histogram over a range is one contiguous read;
- ``rollup_<level>_total`` and ``rollup_<level>_total_hist``: the same per (bucket, account)
  only, so whole-account questions over long ranges read a few rows per bucket;
- ``rollup_<level>_number``: the counters per (account, called number), number first, so a
  question about one number reads one row per bucket.

Triggers (``rollup_triggers.py``) add every inserted call and move updated ones (old out, new
in), inside the writing transaction. Minutes always; the coarser levels only for calls that
started before ``rollup_state.compacted_until``: the minutes after it are summed into them
later, once finished (``compact_statements``), so the writer's transaction upserts a quarter of
the rows. Hence the invariant, on both backends: every minute table equals a recomputation from
``calls``; every coarser table equals the sum of its family's minutes before compacted_until
(``plan.py`` reads minutes after it). Pruning calls keeps their rollups. Buckets are epoch
milliseconds in both backends, so queries over rollups are the same SQL on SQLite and PostgreSQL.

``SPEC`` is the one description of it all (levels, families, metrics); ``SPEC_0002``,
``SPEC_0003`` and ``SPEC_0006`` are what those migrations created, so an old migration's SQL
never changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from callpulse.store.dialect import REPEAT_WINDOW_MS, Dialect
from callpulse.store.repeats import repeat_flag

# A week (epoch-aligned: weeks start on Thursdays, like the epoch) lets a 30-day range read a
# dozen buckets instead of thirty; time series still bucket by minute, hour or day.
LEVELS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000, "week": 7 * 86_400_000}
MOS_KIND, DURATION_KIND = 0, 1
METRICS = ("calls", "completed", "failed", "duration_s", "mos_sum", "mos_n", "repeats",
           "duration_n", "problems")  # fmt: skip
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
    """One kind of rollup table, present at every level. ``order`` is its primary key's column
    order (slot aside); empty: bucket first, then the keys (and kind, bin)."""

    suffix: str
    keys: tuple[str, ...]
    hist: bool
    order: tuple[str, ...] = ()

    def table(self, level: str) -> str:
        return f"rollup_{level}{self.suffix}"

    def key_columns(self, dialect: Dialect) -> list[str]:
        """The key columns: bucket first, then the keys (what every upsert names)."""
        return ["bucket", *self.keys, *(["kind", "bin"] if self.hist else []), *_slot(dialect)]

    def primary_key(self, dialect: Dialect) -> list[str]:
        """The key columns in the primary key's order (the index reads go by)."""
        return [*self.order, *_slot(dialect)] if self.order else self.key_columns(dialect)


FAMILIES = (
    Family("", GROUP_KEYS, hist=False),
    # Number, then kind, then bucket: one number's (or every listed number's) MOS bins over a
    # range are a seek and a contiguous read, not a scan past every other number's bins.
    Family(
        "_hist", HIST_KEYS, hist=True, order=("to_number", "kind", "bucket", "account_sid", "bin")
    ),
    Family("_total", ("account_sid",), hist=False),
    Family("_total_hist", ("account_sid",), hist=True),
    # Per number without the region, number first: what a To filter reads (an hour per row).
    Family("_number", HIST_KEYS, hist=False, order=("to_number", "bucket", "account_sid")),
)


@dataclass(frozen=True)
class Spec:
    """The rollups as of a migration: levels (name: bucket size, ms), families, metrics."""

    levels: dict[str, int]
    families: tuple[Family, ...]
    metrics: tuple[str, ...]
    covering: bool = False  # primary keys that include the values, where the dialect has them
    compacted: bool = False  # coarser levels summed from minutes before compacted_until

    def tables(self) -> list[tuple[str, Family]]:
        return [(level, family) for level in self.levels for family in self.families]

    def split(self) -> tuple[Spec, Spec]:
        """The finest level alone, and the coarser ones (what the triggers keep when)."""
        first, *rest = self.levels
        return (
            replace(self, levels={first: self.levels[first]}),
            replace(self, levels={level: self.levels[level] for level in rest}),
        )


SPEC_0006 = Spec(LEVELS, FAMILIES, METRICS)
SPEC_0007 = replace(SPEC_0006, covering=True)
SPEC = replace(SPEC_0007, compacted=True)
# How far behind the clock compaction stays: a call that started earlier and arrives late (a
# retried callback, a reconciled call) costs the writer every level; callbacks come seconds
# after their Timestamp, so nearly all of them fall after it. Questions read the minutes after
# it, so it is short: ranges that end now read at most ten minutes more of them than before.
COMPACT_LAG_MS = 10 * LEVELS["minute"]
COMPACTED_UNTIL = "(SELECT compacted_until FROM rollup_state)"
# What migrations 0002 (the first seven metrics) and 0003 (the rest) created: three levels, every
# primary key bucket first. 0006 added the week and the per-number counters, and put the
# per-number histograms number first.
SPEC_0003 = Spec(
    {name: LEVELS[name] for name in ("minute", "hour", "day")},
    tuple(replace(family, order=()) for family in FAMILIES[:4]),
    METRICS,
)
SPEC_0002 = replace(SPEC_0003, metrics=METRICS[:7])


def _slot(dialect: Dialect) -> list[str]:
    return ["slot"] if dialect.slot else []


def value_columns(family: Family, metrics: tuple[str, ...] = METRICS) -> tuple[str, ...]:
    return ("n",) if family.hist else metrics


def create_table(
    level: str, family: Family, dialect: Dialect, spec: Spec = SPEC, name: str | None = None
) -> str:
    """The table of ``family`` at ``level`` (named ``name``, when given, to be renamed later)."""
    i, r = dialect.int_type, dialect.real_type
    types = {"bucket": i, "kind": "integer", "bin": "integer", "slot": "integer", "mos_sum": r}
    keys = family.key_columns(dialect)
    columns = [f"{c} {types.get(c, 'TEXT')} NOT NULL" for c in keys]
    columns += [f"{c} {types.get(c, i)} NOT NULL" for c in value_columns(family, spec.metrics)]
    return (
        f"CREATE TABLE {name or family.table(level)} ({', '.join(columns)}, "
        f"{primary_key(family, dialect, spec)}){dialect.table_suffix}"
    )


def primary_key(family: Family, dialect: Dialect, spec: Spec = SPEC) -> str:
    values = value_columns(family, spec.metrics)
    include = f" INCLUDE ({', '.join(values)})" if spec.covering and dialect.covering_keys else ""
    return f"PRIMARY KEY ({', '.join(family.primary_key(dialect))}){include}"


def tables(dialect: Dialect, spec: Spec = SPEC) -> list[str]:
    return [create_table(level, family, dialect, spec) for level, family in spec.tables()]


def summed(
    level: str,
    family: Family,
    dialect: Dialect,
    source: str,
    since: str = "0",
    spec: Spec = SPEC,
    until: str | None = None,
    sign: int = 0,
) -> str:
    """Fill ``family`` at ``level`` with the sums of ``source``'s buckets from ``since``'s bucket
    of this level on (before ``until``, when given; a table of finer or equal buckets with these
    keys or more): exact, since rollups are sums, and it keeps what pruned calls left there.
    ``sign`` 0: into rows that do not exist yet; 1 (-1): added to (taken from) existing ones,
    from ``since`` exactly (compaction)."""
    keys, values = family.key_columns(dialect), value_columns(family, spec.metrics)
    size = spec.levels[level]  # (integer division on both backends; buckets are >= 0)
    # Compaction runs while no writer does (its lock): every backend's slot into one, so the
    # coarser levels hold a row per key, not one per process that ever wrote.
    grouped = ["0" if sign and key == "slot" else key for key in keys[1:]]
    negated = "-" if sign < 0 else ""
    picked = [f"bucket / {size} * {size}", *grouped, *(f"{negated}sum({v})" for v in values)]
    where = f"bucket >= {since}" if sign else f"bucket >= {since} / {size} * {size}"
    return (
        f"INSERT INTO {family.table(level)} ({', '.join([*keys, *values])}) "
        f"SELECT {', '.join(picked)} FROM {source} WHERE {where}"
        + (f" AND bucket < {until}" if until is not None else "")
        + f" GROUP BY {', '.join(map(str, range(1, len(keys) + 1)))}"
        + (" " + _upsert(family.table(level), keys, values) if sign else "")
    )


def compact_statements(
    dialect: Dialect, since: int, until: int, spec: Spec = SPEC, sign: int = 1
) -> list[tuple[str, tuple[int, ...]]]:
    """Add (``sign`` -1: take away) the minutes in [since, until) (epoch ms, whole minutes) to
    every coarser table of their family, each statement with its parameters: what moves
    compacted_until from since to until."""
    live, coarser = spec.split()
    (minute,), p = live.levels, dialect.param
    counters = _finest(FAMILIES[0], spec).table(minute)  # bucket first: a range is a seek
    in_range = f"bucket >= {p} AND bucket < {p}"
    statements = []
    for level, family in coarser.tables():
        source = family.table(minute)
        # Number first: counters from the bucket-first per-group minutes (the same sums),
        # histograms by a seek per number the minutes have calls for.
        if family.primary_key(dialect)[0] != "bucket":
            source = (
                counters
                if not family.hist
                else f"(SELECT * FROM {source} WHERE to_number IN (SELECT DISTINCT to_number "
                f"FROM {counters} WHERE {in_range}) AND kind IN ({MOS_KIND}, {DURATION_KIND}) "
                f"AND {in_range}) AS m"
            )
        sql = summed(level, family, dialect, source, p, spec, until=p, sign=sign)
        statements.append((sql, (since, until) * (sql.count(p) // 2)))  # (every pair a range)
    return statements


def _finest(family: Family, spec: Spec) -> Family:
    """The family of ``family``'s kind (counters or histograms) with the most keys: what the
    others of its kind are sums of."""
    return max((f for f in spec.families if f.hist == family.hist), key=lambda f: len(f.keys))


def build_statements(dialect: Dialect, spec: Spec = SPEC, since: str = "0") -> list[str]:
    """Every rollup of the calls that started from ``since`` (epoch ms of a whole day) on, into
    tables holding none of their buckets: the finest families' minutes from ``calls`` (one scan
    per kind of row they take), every other table summed from a finer one (far fewer rows)."""
    finest = tuple(dict.fromkeys(_finest(f, spec) for f in spec.families))
    first, *_ = spec.levels
    minutes = Spec({first: spec.levels[first]}, finest, spec.metrics)
    statements = aggregate_statements("(SELECT *, 1 AS sign FROM calls)", dialect, "0", minutes)
    finer: str | None = None
    for level in spec.levels:
        for family in sorted(spec.families, key=lambda f: f not in finest):  # finest first
            if family in finest:
                if finer is not None:
                    # (minutes after compacted_until are not the coarser levels' yet; finer
                    # levels then hold none of them)
                    until = COMPACTED_UNTIL if spec.compacted and finer == first else None
                    source = family.table(finer)
                    statements.append(summed(level, family, dialect, source, since, spec, until))
            else:
                source = _finest(family, spec).table(level)
                statements.append(summed(level, family, dialect, source, since, spec))
        finer = level
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
    spec: Spec,
) -> list[str]:
    """One upsert per rollup table (two per histogram table: MOS and duration) of what ``row``
    contributes; ``value`` wraps each contribution (signed, or summed over ``source``)."""
    statements = []
    metrics = spec.metrics
    for level, family in spec.tables():
        size = spec.levels[level]
        table, keys = family.table(level), family.key_columns(dialect)
        columns = value_columns(family, metrics)
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


def row_statements(row: str, sign: int, dialect: Dialect, spec: Spec = SPEC) -> list[str]:
    """Add (sign 1) or remove (sign -1) one calls row: the body of a row trigger."""
    slot = [dialect.slot] if dialect.slot else []
    return _upserts(row, dialect, lambda e: f"{sign} * ({e})", "", slot, spec)


def aggregate_statements(
    source: str, dialect: Dialect, slot_value: str | None = None, spec: Spec = SPEC
) -> list[str]:
    """Add every row of ``source`` (calls columns plus ``sign``: 1 adds, -1 removes)."""
    slot = [slot_value or dialect.slot or ""] if dialect.slot else []
    return _upserts("c", dialect, lambda e: f"sum(c.sign * ({e}))", f" FROM {source} c", slot, spec)


def rebuild_statements(dialect: Dialect, spec: Spec = SPEC) -> list[str]:
    """Recompute repeat flags and every rollup from ``calls``; rollups of pruned calls stay."""
    # Pruning removes whole UTC days at least, so from the oldest stored call's day on every
    # bucket holds stored calls only; earlier buckets hold pruned calls only and stay.
    day = spec.levels["day"]
    oldest = f"(SELECT min({dialect.ms('started_at')}) FROM calls)"
    oldest_day = f"({oldest} - {oldest} % {day})"
    flag = repeat_flag(dialect)
    statements = [
        # In the day after the oldest stored one the earlier call may have been pruned: a
        # repeat found then stays a repeat.
        f"UPDATE calls AS c SET is_repeat = {flag} WHERE is_repeat <> {flag} AND "
        f"({flag} = {dialect.true} "
        f"OR {dialect.ms('c.started_at')} >= {oldest_day} + {REPEAT_WINDOW_MS})"
    ]
    # A coarser bucket holding the oldest day may also hold pruned calls, which only the kept
    # finer buckets still count: each level is deleted from that bucket on and summed again.
    for level, family in spec.tables():
        size = spec.levels[level]
        statements.append(
            f"DELETE FROM {family.table(level)} WHERE bucket >= {oldest_day} / {size} * {size}"
        )
    return statements + build_statements(dialect, spec, oldest_day)
