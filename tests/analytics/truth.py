"""Ground truth: the KPIs' definitions computed directly from call records, without SQL,
rollups or histograms, to check analytics against."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import phonenumbers

from callpulse.callback import WITHHELD, CallRecord

BANDS = (4.34, 4.03, 3.60, 3.10, 2.58)  # lower edges, best band first; the rest is below 2.58


def region(number: str) -> str:
    if number == WITHHELD:
        return "unknown"
    if number.startswith(("sip:", "client:")):
        return number.partition(":")[0]
    return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or "unknown"


def nearest_rank(values: Iterable[float], fraction: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def is_repeat(call: CallRecord, every: list[CallRecord]) -> bool:
    return call.from_number != WITHHELD and any(
        other.account_sid == call.account_sid
        and other.from_number == call.from_number
        and call.started_at - timedelta(hours=24) <= other.started_at < call.started_at
        for other in every
    )


def totals(
    every: list[CallRecord],
    since: datetime,
    until: datetime,
    keep: Callable[[CallRecord], bool] = lambda _: True,
    poor_mos: float = 3.5,
    short_s: int = 10,
) -> dict[str, object]:
    calls = [c for c in every if since <= c.started_at < until and keep(c)]
    completed = [c for c in calls if c.status == "completed"]
    failed = [c for c in calls if c.status == "failed"]
    mos = [c.mos for c in completed if c.mos is not None]
    mos_floor = [math.floor(m * 100 + 1e-9) / 100 for m in mos]  # percentiles are to 0.01
    durations = [c.duration_s for c in completed if c.duration_s is not None]
    bands = Counter(next((i for i, edge in enumerate(BANDS) if m >= edge), 5) for m in mos)
    hours = Counter(c.started_at.replace(minute=0, second=0, microsecond=0) for c in calls)
    busiest = min(hours, key=lambda h: (-hours[h], h)) if hours else None
    return {
        "calls": len(calls),
        "problems": sum(1 for c in calls if c.problems),
        "mos_scored": len(mos),
        "duration_timed": len(durations),
        "completed": len(completed),
        "failed": len(failed),
        "success_rate": share(len(completed), len(completed) + len(failed)),
        "mos_mean": sum(mos) / len(mos) if mos else None,
        "mos_p05": nearest_rank(mos_floor, 0.05),
        "mos_p50": nearest_rank(mos_floor, 0.50),
        "mos_p95": nearest_rank(mos_floor, 0.95),
        "poor_rate": share(sum(1 for m in mos if m < poor_mos), len(mos)),
        "band_calls": [bands[i] for i in range(6)],
        "total_s": sum(durations),
        "acd_s": share(sum(durations), len(durations)),
        "duration_p50": nearest_rank(durations, 0.50),
        "duration_p90": nearest_rank(durations, 0.90),
        "short_call_rate": share(sum(1 for d in durations if d < short_s), len(durations)),
        "repeat_callers": sum(1 for c in calls if is_repeat(c, every)),
        "busiest_hour": busiest,
        "busiest_calls": hours[busiest] if busiest else 0,
        "busiest_erlangs": (
            sum(c.duration_s or 0 for c in completed if c.started_at.replace(
                minute=0, second=0, microsecond=0) == busiest) / 3600
            if busiest else None
        ),
    }  # fmt: skip
