"""The triggers that keep rollups in step with ``calls``, inside the writing transaction.

SQLite runs them per row (cheap compiled statements), PostgreSQL per statement over the
transition tables (one aggregate upsert per table and batch). With a compacted spec the minutes
take every call and the coarser levels only calls that started before compacted_until (those
after it are summed in later, ``rollups.compact_statements``).
"""

from __future__ import annotations

from callpulse.store.dialect import COMPACTION_LOCK, POSTGRES, SQLITE
from callpulse.store.repeats import later_repeats
from callpulse.store.rollups import (
    COMPACTED_UNTIL,
    SPEC,
    Spec,
    aggregate_statements,
    row_statements,
)

# Every trigger a spec's schema has (PostgreSQL: each with a function of the same name).
TRIGGERS = ("calls_rollup_insert", "calls_rollup_update")
LATE_TRIGGERS = ("calls_rollup_insert_late", "calls_rollup_update_old", "calls_rollup_update_new")


def trigger_names(spec: Spec = SPEC, postgres: bool = False) -> tuple[str, ...]:
    return TRIGGERS if postgres or not spec.compacted else (*TRIGGERS, *LATE_TRIGGERS)


def _sqlite_trigger(name: str, event: str, body: list[str], when: str = "") -> str:
    condition = f" WHEN {when}" if when else ""
    statements = "".join(f"{statement};\n" for statement in body)
    return f"CREATE TRIGGER {name} AFTER {event} ON calls{condition} BEGIN\n{statements}END"


def sqlite_triggers(spec: Spec = SPEC) -> list[str]:
    live, coarser = spec.split() if spec.compacted else (spec, None)
    repeats = later_repeats("new", SQLITE)
    triggers = [
        _sqlite_trigger(
            "calls_rollup_insert", "INSERT", [*row_statements("new", 1, SQLITE, live), repeats]
        ),
        _sqlite_trigger(
            "calls_rollup_update",
            "UPDATE",
            [*row_statements("old", -1, SQLITE, live), *row_statements("new", 1, SQLITE, live)],
        ),
    ]
    if coarser is None:
        return triggers
    # (the WHEN is evaluated once per row: a call after compacted_until runs none of these)
    return [
        *triggers,
        _sqlite_trigger(
            "calls_rollup_insert_late",
            "INSERT",
            row_statements("new", 1, SQLITE, coarser),
            f"new.started_at < {COMPACTED_UNTIL}",
        ),
        _sqlite_trigger(
            "calls_rollup_update_old",
            "UPDATE",
            row_statements("old", -1, SQLITE, coarser),
            f"old.started_at < {COMPACTED_UNTIL}",
        ),
        _sqlite_trigger(
            "calls_rollup_update_new",
            "UPDATE",
            row_statements("new", 1, SQLITE, coarser),
            f"new.started_at < {COMPACTED_UNTIL}",
        ),
    ]


def _function(name: str, body: list[str], settings: str, compacted: bool) -> str:
    statements = "".join(f"{statement};\n" for statement in body)
    declare = "DECLARE compacted bigint;\n" if compacted else ""
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql{settings} AS $$\n"
        f"{declare}BEGIN\n{statements}RETURN NULL;\nEND $$"
    )


def postgres_triggers(spec: Spec = SPEC) -> list[str]:
    inserted = "(SELECT n.*, 1 AS sign FROM new_rows n{n})"
    moved = "(SELECT o.*, -1 AS sign FROM old_rows o{o} UNION ALL SELECT n.*, 1 FROM new_rows n{n})"

    def before(row: str) -> str:
        return f" WHERE {POSTGRES.ms(f'{row}.started_at')} < compacted"

    if spec.compacted:
        live, coarser = spec.split()
        # Shared, so writers go on together; compaction's exclusive lock waits for them to
        # commit and they for it (queued fairly), so no call is summed twice or never. The read
        # comes after: its snapshot then holds what a compaction that went first committed.
        lock = [
            f"PERFORM pg_advisory_xact_lock_shared({COMPACTION_LOCK})",
            "SELECT compacted_until INTO compacted FROM rollup_state",
        ]
        add = aggregate_statements(inserted.format(n=""), POSTGRES, spec=live)
        add += aggregate_statements(inserted.format(n=before("n")), POSTGRES, spec=coarser)
        move = aggregate_statements(moved.format(o="", n=""), POSTGRES, spec=live)
        move += aggregate_statements(
            moved.format(o=before("o"), n=before("n")), POSTGRES, spec=coarser
        )
    else:
        lock = []
        add = aggregate_statements(inserted.format(n=""), POSTGRES, spec=spec)
        move = aggregate_statements(moved.format(o="", n=""), POSTGRES, spec=spec)
    return [
        # Without statistics on the transition table the planner would hash it and scan all of
        # calls for the repeat update; nested index lookups cost a few per inserted call.
        _function(
            "calls_rollup_insert",
            [*lock, *add, later_repeats("n", POSTGRES, " FROM new_rows n")],
            "\nSET enable_hashjoin = off SET enable_mergejoin = off",
            spec.compacted,
        ),
        _function("calls_rollup_update", [*lock, *move], "", spec.compacted),
        "CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls REFERENCING NEW TABLE AS "
        "new_rows FOR EACH STATEMENT EXECUTE FUNCTION calls_rollup_insert()",
        "CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls REFERENCING OLD TABLE AS "
        "old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION calls_rollup_update()",
    ]
