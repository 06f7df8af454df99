"""Agents needed per clock hour, and per hour of the week, from hourly arrivals and durations.

Each hour's offered traffic is its calls times the mean duration of its completed calls with
a duration. CallDuration is the whole call (IVR and queue included), so the agents are line
staffing: an upper bound on the agents the calls need.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from callpulse.analytics import erlang
from callpulse.analytics.models import StaffingInterval, StaffingProfileHour
from callpulse.analytics.queries import Counters
from callpulse.analytics.stats import ratio
from callpulse.store.base import from_epoch_ms

UNKNOWN = dict.fromkeys(
    ("erlangs", "agents", "scheduled", "service_level", "occupancy", "p_wait", "asa_s")
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class TooMuchTraffic(ValueError):
    """An hour's traffic beyond what the Erlang C search takes (``erlang.MAX_ERLANGS``)."""


def figures(calls: float, aht_s: float | None, target: erlang.Target, where: str) -> dict[str, Any]:
    """The Erlang C fields for ``calls`` in an hour, ``aht_s`` long on average (None: unknown,
    so are the agents; no calls need no agents whatever their duration)."""
    if calls and aht_s is None:
        return {"aht_s": None, **UNKNOWN}
    erlangs = calls * (aht_s or 0.0) / 3600
    if erlangs > erlang.MAX_ERLANGS:
        raise TooMuchTraffic(
            f"{where} carries {erlangs:,.0f} Erlangs, more than "
            f"{erlang.MAX_ERLANGS:,.0f}: check the calls' durations, or filter them"
        )
    result = erlang.staff(erlangs, aht_s, target) if erlangs and aht_s else erlang.NO_TRAFFIC
    return {
        "aht_s": aht_s,
        "erlangs": erlangs,
        "agents": result.agents,
        "scheduled": result.scheduled,
        "service_level": result.service_level,
        "occupancy": result.occupancy,
        "p_wait": result.p_wait,
        "asa_s": result.asa_s,
    }


def intervals(
    hourly: Mapping[int, Counters], starts: list[int], target: erlang.Target
) -> list[StaffingInterval]:
    """One interval per clock hour of ``starts``, from the counters of each."""
    rows = []
    for start_ms in starts:
        c = hourly.get(start_ms, Counters())
        start = from_epoch_ms(start_ms)
        aht = ratio(c.duration_s, c.duration_n)
        rows.append(
            StaffingInterval(
                start=start,
                calls=c.calls,
                **figures(c.calls, aht, target, f"the hour from {start.isoformat()}"),
            )
        )
    return rows


def profile(
    hourly: Mapping[int, Counters], starts: list[int], target: erlang.Target, zone: tzinfo
) -> list[StaffingProfileHour]:
    """Per hour of the week (on ``zone``'s wall clock) the hours ``starts`` hold: mean calls
    over its weeks, the duration-weighted mean AHT, and the agents those need."""
    weeks: dict[tuple[int, int], list[Counters]] = {}
    for start_ms in starts:
        moment = from_epoch_ms(start_ms).astimezone(zone)
        slot = (moment.weekday(), moment.hour)
        weeks.setdefault(slot, []).append(hourly.get(start_ms, Counters()))
    rows = []
    for (weekday, hour), seen in sorted(weeks.items()):
        calls = sum(c.calls for c in seen) / len(seen)
        aht = ratio(sum(c.duration_s for c in seen), sum(c.duration_n for c in seen))
        rows.append(
            StaffingProfileHour(
                weekday=weekday,
                hour=hour,
                weeks=len(seen),
                calls=calls,
                **figures(calls, aht, target, f"{DAYS[weekday]} {hour:02d}:00 on average"),
            )
        )
    return rows
