"""Which rollup level serves which part of a time range; raw calls fill what no level covers."""

from __future__ import annotations

from callpulse.store.reads import RAW, Segment
from callpulse.store.rollups import LEVELS

__all__ = ["RAW", "Segment", "plan"]


def plan(
    start_ms: int,
    end_ms: int,
    finest_bucket_ms: int | None = None,
    compacted_until_ms: int | None = None,
) -> list[Segment]:
    """Cover [start_ms, end_ms) with as few, as coarse rollup buckets as fit whole, coarsest
    first, and raw calls at the ragged edges. ``finest_bucket_ms`` caps the level size, for
    results grouped by buckets of that size. From ``compacted_until_ms`` (a whole minute) on
    only minutes hold the calls."""
    levels = [
        (name, size)
        for name, size in sorted(LEVELS.items(), key=lambda item: -item[1])
        if finest_bucket_ms is None or size <= finest_bucket_ms
    ]
    split = end_ms if compacted_until_ms is None else max(start_ms, min(end_ms, compacted_until_ms))
    segments: list[Segment] = []
    _cover(start_ms, split, levels, segments)
    _cover(split, end_ms, levels[-1:], segments)
    merged: list[Segment] = []
    for segment in segments:  # (the minutes either side of the split: one segment)
        last = merged[-1] if merged else None
        if last and last.source == segment.source and last.end_ms == segment.start_ms:
            merged[-1] = Segment(last.source, last.start_ms, segment.end_ms)
        else:
            merged.append(segment)
    return merged


def _cover(lo: int, hi: int, levels: list[tuple[str, int]], out: list[Segment]) -> None:
    if lo >= hi:
        return
    if not levels:
        out.append(Segment(RAW, lo, hi))
        return
    (name, size), finer = levels[0], levels[1:]
    first, last = -(-lo // size) * size, hi // size * size
    if first >= last:
        _cover(lo, hi, finer, out)
        return
    _cover(lo, first, finer, out)
    out.append(Segment(name, first, last))
    _cover(last, hi, finer, out)
