"""Repeat callers in SQL: a call whose caller (same account) called in the 24 h before it. The
flags are kept on ``calls`` by the rollup triggers and the per-call path, and recomputed by the
rollup rebuild."""

from __future__ import annotations

from callpulse.store.dialect import Dialect

WITHHELD = "withheld"


def later_repeats(row: str, dialect: Dialect, extra_from: str = "") -> str:
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


def repeat_exists(row: str, dialect: Dialect) -> str:
    """Whether the caller of ``row`` called within the 24 h before it."""
    window = dialect.repeat_window
    return (
        f"({row}.from_number <> '{WITHHELD}' AND EXISTS (SELECT 1 FROM calls p "
        f"WHERE p.from_number = {row}.from_number AND p.account_sid = {row}.account_sid "
        f"AND p.started_at < {row}.started_at AND p.started_at >= {row}.started_at - {window}))"
    )


def refresh_repeats(dialect: Dialect) -> str:
    """Recompute the repeat flags of one caller's calls that started in a span; parameters:
    account, caller, span start and end (epoch ms). Run for a corrected call's old and new
    caller and start, so its flag and those of the calls after it stay true."""
    p, ms_param, flag = dialect.param, dialect.ms_param, repeat_flag(dialect)
    return (
        f"UPDATE calls AS c SET is_repeat = {flag} WHERE c.account_sid = {p} "
        f"AND c.from_number = {p} AND c.started_at >= {ms_param} AND c.started_at <= {ms_param} "
        f"AND c.is_repeat <> {flag}"
    )


def repeat_flag(dialect: Dialect) -> str:
    return dialect.flag(repeat_exists("c", dialect))


def earlier_calls(dialect: Dialect) -> str:
    """Every call of a caller that is not withheld, with how many of the caller's calls started in
    the 24 h before it (columns id, account_sid, from_number, started_at, earlier):
    ``repeat_exists`` for all calls at once, one sort instead of a lookup per call."""
    return (
        f"SELECT {dialect.row_id} AS id, account_sid, from_number, started_at, count(*) OVER ("
        f"PARTITION BY account_sid, from_number ORDER BY started_at {dialect.repeat_frame}"
        f") AS earlier FROM calls WHERE from_number <> '{WITHHELD}'"
    )
