"""The plan covers a range exactly, with whole buckets of each level, and reads only minutes
from compacted_until on."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from callpulse.analytics.plan import RAW, plan
from callpulse.store.rollups import LEVELS

DAY, MINUTE = LEVELS["day"], LEVELS["minute"]
moments = st.integers(0, 90 * DAY)


@given(
    start=moments,
    length=st.integers(1, 40 * DAY),
    finest=st.sampled_from([None, *LEVELS.values()]),
    compacted_minute=st.one_of(st.none(), st.integers(0, 90 * DAY // MINUTE)),
)
def test_segments_cover_the_range_once(
    start: int, length: int, finest: int | None, compacted_minute: int | None
) -> None:
    end = start + length
    compacted = None if compacted_minute is None else compacted_minute * MINUTE
    segments = plan(start, end, finest, compacted)
    assert segments[0].start_ms == start and segments[-1].end_ms == end
    for before, after in itertools.pairwise(segments):
        assert before.end_ms == after.start_ms
        assert before.source != after.source  # neighbours of one source are one segment
    for segment in segments:
        assert segment.start_ms < segment.end_ms
        if segment.source == RAW:
            continue
        size = LEVELS[segment.source]
        assert segment.start_ms % size == 0 and segment.end_ms % size == 0
        assert finest is None or size <= finest
        if compacted is not None and segment.source != "minute":
            assert segment.end_ms <= compacted  # coarser levels hold nothing after it yet


def test_after_compaction_only_minutes_and_raw_calls() -> None:
    start, compacted = 10 * DAY, 40 * DAY + 17 * MINUTE
    tail = plan(start, compacted + 3 * MINUTE + 5, None, compacted)
    assert [(s.source, s.start_ms, s.end_ms) for s in tail[-2:]] == [
        ("minute", 40 * DAY, compacted + 3 * MINUTE),  # the day's first minutes, and after
        (RAW, compacted + 3 * MINUTE, compacted + 3 * MINUTE + 5),
    ]
    assert plan(start, start + DAY, None, 0) == plan(start, start + DAY, MINUTE)
    assert plan(start, start + 7 * DAY, None, None) == plan(start, start + 7 * DAY, None, 99 * DAY)
