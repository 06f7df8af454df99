"""The Calls list filters: ``To``, ``From``, ``Status`` and the ``StartTime``/``EndTime`` family.

A time is RFC 2822, ISO 8601 (UTC when it has no offset) or a date ``YYYY-MM-DD`` in UTC.
``StartTime=`` a date matches the whole day, a time the exact second. ``StartTime>`` means on or
after, ``StartTime<`` on or before (with a date: before the end of that day) — both inclusive,
so overlapping windows never miss a call at their edge.
"""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta

from callpulse.signalwire.emulator.errors import invalid
from callpulse.signalwire.emulator.resources import caller_id
from callpulse.signalwire.emulator.state import Call

Predicate = Callable[[Call], bool]
EXACT: dict[str, Callable[[Call], str]] = {
    "To": lambda call: call.record.to_number,
    "From": caller_id,
    "Status": lambda call: call.record.status,
}
TIMES: dict[str, Callable[[Call], datetime]] = {
    "StartTime": lambda call: call.record.started_at,
    "EndTime": lambda call: call.end_time,
}
_DAY = timedelta(days=1)


def _span(name: str, text: str) -> tuple[datetime, datetime]:
    """[first, last] instants ``text`` stands for: one second, or a whole UTC day."""
    with contextlib.suppress(ValueError):
        day = date.fromisoformat(text)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start, start + _DAY - timedelta(microseconds=1)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        moment = None
    try:
        moment = moment or datetime.fromisoformat(text)
    except ValueError:
        raise invalid(
            name, f"must be a date (2024-04-04) or a time in RFC 2822 or ISO 8601, got {text!r}"
        ) from None
    moment = moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)
    return moment, moment


def _time_filter(name: str, text: str, value: Callable[[Call], datetime]) -> Predicate:
    first, last = _span(name, text)
    if name.endswith(">"):
        return lambda call: value(call) >= first
    if name.endswith("<"):
        return lambda call: value(call) <= last
    return lambda call: first <= value(call) <= last


def _exact_filter(value: Callable[[Call], str], text: str) -> Predicate:
    return lambda call: value(call) == text


def call_filters(query: Mapping[str, str]) -> tuple[list[Predicate], list[tuple[str, str]]]:
    """The predicates of the filters in ``query``, and those filters to repeat in page URIs."""
    predicates: list[Predicate] = []
    given: list[tuple[str, str]] = []
    for name, text in query.items():
        if name in EXACT:
            predicates.append(_exact_filter(EXACT[name], text))
        elif name.rstrip("<>") in TIMES:
            predicates.append(_time_filter(name, text, TIMES[name.rstrip("<>")]))
        else:
            continue
        given.append((name, text))
    return predicates, given
