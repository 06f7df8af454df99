"""Where time-series buckets start: on whole minutes, hours or days of a zone's wall clock."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone, tzinfo

from callpulse.store.dialect import from_epoch_ms, to_epoch_ms
from callpulse.store.rollups import LEVELS

MINUTE_MS = LEVELS["minute"]


def _offset_ms(ms: int, zone: tzinfo) -> int:
    offset = from_epoch_ms(ms).astimezone(zone).utcoffset() or timedelta()
    # Whole minutes, so every bucket is made of stored minutes (old local mean times had seconds).
    return int(offset.total_seconds() * 1000) // MINUTE_MS * MINUTE_MS


def _floor(ms: int, size: int, zone: tzinfo) -> int:
    return ms - (ms + _offset_ms(ms, zone)) % size


def _midnight(day: datetime, zone: tzinfo) -> int:
    ms = to_epoch_ms(datetime.combine(day.date(), time(), zone))
    return ms - (ms + _offset_ms(ms, zone)) % MINUTE_MS


def bucket_starts(start_ms: int, end_ms: int, bucket: str, zone: tzinfo) -> list[int]:
    """The starts of the buckets covering [start_ms, end_ms), the first at or before start_ms.

    Days follow the zone's midnights (23 or 25 hours long across a daylight-saving change)."""
    starts: list[int] = []
    if bucket == "day":
        day = from_epoch_ms(start_ms).astimezone(zone)
        while (ms := _midnight(day, zone)) < end_ms:
            # A midnight that daylight saving skips lands after start: the day starts at start.
            starts.append(min(ms, start_ms) if not starts else ms)
            day += timedelta(days=1)
        return starts
    size = LEVELS[bucket]
    if isinstance(zone, timezone):  # a fixed offset (UTC too): no wall-clock changes to follow
        return list(range(_floor(start_ms, size, zone), end_ms, size))
    ms = _floor(start_ms, size, zone)
    while ms < end_ms:
        starts.append(ms)
        ms = _floor(ms + size, size, zone)
    return starts
