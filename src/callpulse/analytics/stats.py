"""Pure statistics over counters and histograms: rates, percentiles, G.107 bands."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from callpulse.analytics.models import MosBand

# ITU-T G.107 E-model user satisfaction, as (name, lower MOS, upper MOS), best first.
G107_BANDS = (
    ("very satisfied", 4.34, 5.0),
    ("satisfied", 4.03, 4.34),
    ("some users dissatisfied", 3.60, 4.03),
    ("many users dissatisfied", 3.10, 3.60),
    ("nearly all users dissatisfied", 2.58, 3.10),
    ("not recommended", 1.0, 2.58),
)
MOS_BIN = 100  # histogram bins are MOS x 100


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def percentile(
    histogram: Mapping[int, int], fraction: float, width: Callable[[int], int] = lambda _: 1
) -> float | None:
    """Nearest-rank percentile of a histogram {bin lower bound: count}; exact for bins of
    width 1; inside wider bins the calls count as spread evenly (one call: the bin's middle)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for lower in sorted(histogram):
        count = histogram[lower]
        if seen + count >= rank:
            bin_width = width(lower)
            if bin_width == 1:
                return float(lower)
            return lower + bin_width * (rank - seen - 0.5) / count  # spread evenly in the bin
        seen += count
    raise AssertionError("rank beyond the histogram")  # pragma: no cover


def count_below(histogram: Mapping[int, int], limit: float) -> int:
    return sum(count for lower, count in histogram.items() if lower < limit)


def mos_bands(mos_histogram: Mapping[int, int]) -> list[MosBand]:
    total = sum(mos_histogram.values())
    bands = []
    for index, (name, lower, upper) in enumerate(G107_BANDS):
        low, high = round(lower * MOS_BIN), round(upper * MOS_BIN)
        best, worst = index == 0, index == len(G107_BANDS) - 1  # open-ended at 5.0 and 1.0
        calls = sum(
            n for b, n in mos_histogram.items() if (best or b < high) and (worst or b >= low)
        )
        bands.append(
            MosBand(name=name, lower=lower, upper=upper, calls=calls, share=ratio(calls, total))
        )
    return bands
