"""The pure statistics (callpulse.analytics.stats) with exact values: no store, no clock."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from callpulse.analytics.stats import (
    G107_BANDS,
    MOS_BIN,
    count_below,
    mos_bands,
    percentile,
    ratio,
)


def test_ratio_is_none_only_for_an_empty_whole() -> None:
    assert ratio(1, 4) == 0.25
    assert ratio(3, 2) == 1.5
    assert ratio(0, 5) == 0.0 and ratio(0, 5) is not None
    assert ratio(3, 0) is None
    assert ratio(0, 0) is None
    assert ratio(2.0, 0.0) is None


def test_percentile_of_nothing_is_none() -> None:
    assert percentile({}, 0.5) is None
    assert percentile({7: 0, 9: 0}, 0.5) is None


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.0, 1.0), (0.01, 1.0), (0.25, 1.0), (0.26, 2.0), (0.5, 2.0), (0.51, 3.0), (0.75, 3.0),
     (0.76, 4.0), (1.0, 4.0)],
)  # fmt: skip
def test_percentile_is_the_nearest_rank(fraction: float, expected: float) -> None:
    value = percentile({1: 1, 2: 1, 3: 1, 4: 1}, fraction)
    assert value == expected and type(value) is float


def test_percentile_counts_repeated_values_and_ignores_key_order() -> None:
    histogram = {20: 1, 10: 3, 30: 0}  # not in order, and an empty bin
    assert percentile(histogram, 0.75) == 10.0  # rank 3 of 4 is the last 10
    assert percentile(histogram, 0.76) == 20.0  # rank 4
    assert percentile(histogram, 1.0) == 20.0
    assert percentile({300: 1, 100: 1, 200: 1}, 0.5) == 200.0
    assert percentile({1: 1, 2: 1, 3: 1}, 1.0) == 3.0  # the rank is reached after two bins
    assert percentile({5: 2}, 1.0) == 5.0  # default bins are exact


def _tens(lower: int) -> int:
    """Bins of one below 60, of ten from 60 (as durations are binned)."""
    return 1 if lower < 60 else 10


@pytest.mark.parametrize(
    ("histogram", "fraction", "expected"),
    [
        ({100: 1}, 0.5, 105.0),  # one call: the bin's middle
        ({100: 4}, 0.25, 101.25),  # rank 1 of 4 spread over 100-110
        ({100: 4}, 0.5, 103.75),
        ({100: 4}, 1.0, 108.75),
        ({30: 2, 100: 4}, 0.5, 101.25),  # rank 3: the first call of the wide bin
        ({30: 2, 100: 4}, 1 / 3, 30.0),  # rank 2: still in the exact bin
        ({59: 1, 60: 1}, 1.0, 65.0),  # the width is asked of the bin's own lower bound
    ],
)
def test_percentile_spreads_calls_evenly_in_a_wide_bin(
    histogram: Mapping[int, int], fraction: float, expected: float
) -> None:
    assert percentile(histogram, fraction, _tens) == pytest.approx(expected, abs=1e-12)


def test_percentile_in_bins_of_two() -> None:
    assert percentile({10: 2}, 1.0, lambda _: 2) == 11.5
    assert percentile({10: 2}, 0.5, lambda _: 2) == 10.5


def test_count_below_is_strict() -> None:
    histogram = {1: 2, 5: 3, 10: 4}
    assert count_below(histogram, 0) == 0
    assert count_below(histogram, 1) == 0
    assert count_below(histogram, 5) == 2
    assert count_below(histogram, 5.5) == 5
    assert count_below(histogram, 10.01) == 9
    assert count_below({}, 10) == 0


BAND_NAMES = [
    "very satisfied",
    "satisfied",
    "some users dissatisfied",
    "many users dissatisfied",
    "nearly all users dissatisfied",
    "not recommended",
]


def test_bands_are_the_g107_table() -> None:
    assert MOS_BIN == 100
    bands = mos_bands({})
    assert [(b.name, b.lower, b.upper) for b in bands] == [
        ("very satisfied", 4.34, 5.0),
        ("satisfied", 4.03, 4.34),
        ("some users dissatisfied", 3.60, 4.03),
        ("many users dissatisfied", 3.10, 3.60),
        ("nearly all users dissatisfied", 2.58, 3.10),
        ("not recommended", 1.0, 2.58),
    ]
    assert [(name, lower, upper) for name, lower, upper in G107_BANDS] == [
        (b.name, b.lower, b.upper) for b in bands
    ]
    assert [(b.calls, b.share) for b in bands] == [(0, None)] * 6


# MOS x 100 -> the band it is in: each lower edge belongs to its band, the upper one to the next.
EDGES = [
    (500, "very satisfied"),
    (434, "very satisfied"),
    (433, "satisfied"),
    (403, "satisfied"),
    (402, "some users dissatisfied"),
    (360, "some users dissatisfied"),
    (359, "many users dissatisfied"),
    (310, "many users dissatisfied"),
    (309, "nearly all users dissatisfied"),
    (258, "nearly all users dissatisfied"),
    (257, "not recommended"),
    (100, "not recommended"),
]


@pytest.mark.parametrize(("mos_bin", "band"), EDGES)
def test_a_score_on_a_band_edge_is_in_exactly_one_band(mos_bin: int, band: str) -> None:
    bands = mos_bands({mos_bin: 3})
    assert {b.name: b.calls for b in bands} == {
        name: 3 if name == band else 0 for name in BAND_NAMES
    }
    assert {b.name: b.share for b in bands} == {
        name: 1.0 if name == band else 0.0 for name in BAND_NAMES
    }


def test_the_best_and_worst_bands_are_open_ended() -> None:
    bands = mos_bands({520: 1, 99: 1, 50: 2})
    assert [b.calls for b in bands] == [1, 0, 0, 0, 0, 3]
    assert [b.share for b in bands] == [0.25, 0.0, 0.0, 0.0, 0.0, 0.75]


def test_bands_share_every_call_once() -> None:
    histogram = {mos_bin: i + 1 for i, (mos_bin, _) in enumerate(EDGES)}  # 1..12 calls: 78
    bands = mos_bands(histogram)
    assert [b.calls for b in bands] == [1 + 2, 3 + 4, 5 + 6, 7 + 8, 9 + 10, 11 + 12]
    assert [b.share for b in bands] == pytest.approx(
        [3 / 78, 7 / 78, 11 / 78, 15 / 78, 19 / 78, 23 / 78], rel=1e-15
    )
    assert sum(b.calls for b in bands) == 78


def test_a_fraction_above_one_is_an_error_not_a_value() -> None:
    with pytest.raises(AssertionError) as info:
        percentile({1: 1, 2: 1}, 1.5)
    assert str(info.value) == "rank beyond the histogram"
