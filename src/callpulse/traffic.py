"""A model of a call center's inbound traffic: when calls arrive and what each one looks like.

Everything is drawn from the ``random.Random`` passed in, so a seed reproduces a run exactly.
The shapes follow what the dashboards are built to show: a daily pattern (quiet nights, morning
and afternoon peaks, lighter weekends), callers from several countries and some withheld, lines
with different loads and one bad line, a few percent failures, IVR hang-ups beside log-normal
conversations, MOS mostly 4.0-4.5 (the E-model tops out near 4.5) with a poor tail, and callers
who call again within hours. As real senders do, a failed call comes without a MOS, and a few
completed ones too; a few callers are SIP URIs or client identifiers.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WITHHELD_CALLER = "anonymous"

# Caller number shapes per country ("N" a digit 2-9, "X" any digit); every one is a valid
# number for its country in libphonenumber, so region analytics have something to map.
_CALLER_TEMPLATES: tuple[tuple[float, tuple[str, ...]], ...] = (
    (
        0.52,
        (
            "+1212NXXXXXX",
            "+1415NXXXXXX",
            "+1312NXXXXXX",
            "+1617NXXXXXX",
            "+1305NXXXXXX",
            "+1206NXXXXXX",
            "+1512NXXXXXX",
            "+1404NXXXXXX",
            "+1713NXXXXXX",
        ),
    ),  # US
    (0.07, ("+1416NXXXXXX", "+1604NXXXXXX", "+1514NXXXXXX", "+1403NXXXXXX")),  # CA
    (0.08, ("+44207XXXXXXX", "+44161NXXXXXX", "+4478XXXXXXXX", "+4475XXXXXXXX")),  # GB
    (0.05, ("+4930XXXXXXXX", "+49151XXXXXXXX", "+4989XXXXXXXX")),  # DE
    (0.04, ("+331XXXXXXXX", "+3361XXXXXXX", "+3367XXXXXXX")),  # FR
    (0.06, ("+5255XXXXXXXX", "+5281XXXXXXXX", "+5233XXXXXXXX")),  # MX
    (0.04, ("+55119XXXXXXXX", "+55219XXXXXXXX")),  # BR
    (0.04, ("+919XXXXXXXXX", "+9170XXXXXXXX")),  # IN
    (0.03, ("+6129XXXXXXX", "+6138XXXXXXX", "+6141XXXXXXX")),  # AU
)
_WITHHELD_SHARE = 0.04
# SIP endpoints and SDK clients call numbers too; they have no country.
_SIP_SHARE = 0.015
_CLIENT_SHARE = 0.01
_SIP_DOMAINS = ("example.com", "pbx.example.net", "voip.example.org")
_COUNTRY_WEIGHTS = [weight for weight, _ in _CALLER_TEMPLATES] + [
    _WITHHELD_SHARE,
    _SIP_SHARE,
    _CLIENT_SHARE,
]

# Relative arrival rate at each hour of a weekday (interpolated linearly in between).
_HOURLY = (
    0.10, 0.06, 0.04, 0.04, 0.05, 0.10, 0.30, 0.80, 1.60, 2.20, 2.50, 2.30,
    1.80, 1.90, 2.40, 2.50, 2.20, 1.70, 1.10, 0.80, 0.60, 0.40, 0.25, 0.15,
)  # fmt: skip
_WEEKEND = 0.45
# Scales the profile so that its mean over a week is 1: the mean of a cyclic piecewise-linear
# curve is the mean of its points.
_NORM = (sum(_HOURLY) / 24) * (5 + 2 * _WEEKEND) / 7
_PEAK = max(_HOURLY) / _NORM

_FAIL_SHARE = 0.035
_BAD_LINE_FAIL_SHARE = 0.12
_POOR_SHARE = 0.05
_BAD_LINE_POOR_SHARE = 0.35
_IVR_HANGUP_SHARE = 0.12
_REPEAT_SHARE = 0.12
_UNSCORED_SHARE = 0.02  # completed calls the sender sends without a MOS
# A degraded line (a carrier trunk losing packets): a burst of failures, most calls below MOS 3.
_DEGRADED_FAIL_SHARE = 0.3
_DEGRADED_POOR_SHARE = 0.85
_REPEAT_WITHIN = timedelta(hours=6)


def intensity(at: datetime) -> float:
    """The relative arrival rate at ``at`` (its own time zone's clock); 1 on average over a week."""
    hour = at.hour + at.minute / 60 + at.second / 3600
    low = int(hour)
    frac = hour - low
    level = _HOURLY[low] * (1 - frac) + _HOURLY[(low + 1) % 24] * frac
    return level * (_WEEKEND if at.weekday() >= 5 else 1.0) / _NORM


def calls_per_hour(at: datetime, calls_per_day: float) -> float:
    """The arrival rate at ``at`` of traffic averaging ``calls_per_day`` over a week."""
    return calls_per_day / 24 * intensity(at)


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    from_number: str  # E.164, or "anonymous" for a withheld caller id
    to_number: str
    started_at: datetime
    status: str  # "completed" or "failed"
    duration_s: int  # 0 for a failed call
    mos: float | None  # 1-5, two decimals; None for a failed call and a few completed ones


class TrafficModel:
    """Draws arrival times and calls to ``to_numbers``.

    The numbers get different loads (the first busiest); with two or more, the last one is a
    bad line: more failures and more poor audio. ``degrade`` turns a line much worse from then
    on, as an outage would.
    """

    def __init__(self, rng: random.Random, to_numbers: Sequence[str]) -> None:
        if not to_numbers:
            raise ValueError("TrafficModel needs at least one called number")
        self.rng = rng
        self.to_numbers = tuple(to_numbers)
        self.bad_line = self.to_numbers[-1] if len(self.to_numbers) > 1 else None
        self._loads = [1 / (rank + 1) ** 0.8 for rank in range(len(self.to_numbers))]
        self._recent: deque[tuple[datetime, str]] = deque(maxlen=500)
        self._degraded: set[str] = set()

    def degrade(self, to_number: str) -> None:
        """From now on, calls to ``to_number`` fail often and most sound poor (below MOS 3)."""
        if to_number not in self.to_numbers:
            raise ValueError(f"{to_number!r} is not one of the model's called numbers")
        self._degraded.add(to_number)

    def call(self, started_at: datetime, to_number: str | None = None) -> SimulatedCall:
        """One call starting at ``started_at``, to ``to_number`` or a line drawn by load."""
        rng = self.rng
        if to_number is None:
            to_number = rng.choices(self.to_numbers, self._loads)[0]
        bad = to_number == self.bad_line
        degraded = to_number in self._degraded
        fail_share = _BAD_LINE_FAIL_SHARE if bad else _FAIL_SHARE
        failed = rng.random() < (_DEGRADED_FAIL_SHARE if degraded else fail_share)
        duration = 0 if failed else self._duration()
        caller = self._caller(started_at)
        # A caller whose call failed or was cut short tends to try again.
        if caller != WITHHELD_CALLER and (failed or duration < 10 or rng.random() < _REPEAT_SHARE):
            self._recent.append((started_at, caller))
        return SimulatedCall(
            from_number=caller,
            to_number=to_number,
            started_at=started_at,
            status="failed" if failed else "completed",
            duration_s=duration,
            mos=None if failed or rng.random() < _UNSCORED_SHARE else self._mos(bad, degraded),
        )

    def arrivals(self, start: datetime, end: datetime, calls_per_day: float) -> Iterator[datetime]:
        """Arrival times in [start, end), in order: a Poisson process whose rate follows the
        daily pattern and averages ``calls_per_day`` over a week (thinning a homogeneous one)."""
        if calls_per_day <= 0:
            return
        peak_per_s = calls_per_day / 86400 * _PEAK
        at = start
        while True:
            at += timedelta(seconds=self.rng.expovariate(peak_per_s))
            if at >= end:
                return
            if self.rng.random() * _PEAK < intensity(at):
                yield at.replace(microsecond=0)  # callbacks carry whole seconds

    def spread(self, start: datetime, end: datetime, count: int) -> list[datetime]:
        """Exactly ``count`` arrival times in [start, end), in order, following the daily
        pattern (a Poisson process conditioned on its count)."""
        span = (end - start).total_seconds()
        times: list[datetime] = []
        while len(times) < count and span > 0:
            at = start + timedelta(seconds=self.rng.random() * span)
            if self.rng.random() * _PEAK < intensity(at):
                times.append(at.replace(microsecond=0))
        return sorted(times)

    def _caller(self, started_at: datetime) -> str:
        rng = self.rng
        if self._recent and rng.random() < _REPEAT_SHARE:
            recent = [
                c for t, c in self._recent if timedelta(0) <= started_at - t <= _REPEAT_WITHIN
            ]
            if recent:
                return rng.choice(recent)
        country = rng.choices(range(len(_COUNTRY_WEIGHTS)), _COUNTRY_WEIGHTS)[0]
        if country == len(_CALLER_TEMPLATES):
            return WITHHELD_CALLER
        if country == len(_CALLER_TEMPLATES) + 1:
            return f"sip:user{rng.randint(100, 999)}@{rng.choice(_SIP_DOMAINS)}"
        if country == len(_CALLER_TEMPLATES) + 2:
            return f"client:agent{rng.randint(1, 99)}"
        template = rng.choice(_CALLER_TEMPLATES[country][1])
        return "".join(
            str(rng.randint(2, 9)) if c == "N" else str(rng.randint(0, 9)) if c == "X" else c
            for c in template
        )

    def _duration(self) -> int:
        rng = self.rng
        if rng.random() < _IVR_HANGUP_SHARE:
            seconds = rng.lognormvariate(math.log(5), 0.5)  # hung up in the IVR menu
        else:
            seconds = rng.lognormvariate(math.log(170), 0.8)  # a conversation, median ~3 min
        return max(1, min(round(seconds), 4 * 3600))

    def _mos(self, bad: bool, degraded: bool = False) -> float:
        rng = self.rng
        if degraded and rng.random() < _DEGRADED_POOR_SHARE:
            mos = 3.0 - rng.expovariate(1 / 0.4)  # a degraded trunk: poor for most callers
        elif rng.random() < (_BAD_LINE_POOR_SHARE if bad else _POOR_SHARE):
            mos = 3.6 - rng.expovariate(1 / 0.6)  # packet loss, jitter: the poor tail
        else:
            mos = min(rng.gauss(4.3, 0.12), 4.5)
        return round(min(max(mos, 1.0), 4.5), 2)
