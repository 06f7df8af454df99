"""Erlang C (and Erlang A) staffing: pure functions of offered traffic and a target.

Erlang B comes from its recursion B_k = A·B_{k-1} / (k + A·B_{k-1}), which never forms a
factorial or a power, so it stays exact for thousands (and hundreds of thousands) of Erlangs;
Erlang C, the service level and the speed of answer follow from it in closed form. The search
for agents starts at the square-root staffing point A + √A and walks from there, down with the
inverse recursion or up with the forward one, a few steps either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A million simultaneous calls is far beyond any call center; past it the O(A) recursion and a
# low occupancy cap (A / max_occupancy agents) would make one answer take seconds.
MAX_ERLANGS = 1_000_000.0
MIN_OCCUPANCY = 0.1  # a lower cap than 10 % busy is no staffing target, and bounds the work
_EPSILON = 1e-9  # 14 / 0.7 is 20.000000000000004 in floating point: still 20 agents


class ErlangError(ValueError):
    """An input out of range; ``parameter`` names it, the message says what it may be."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.reason = message


@dataclass(frozen=True, slots=True)
class Target:
    """What the staffing must achieve; checked when made."""

    service_level: float = 0.8  # fraction of calls answered within answer_within_s
    answer_within_s: float = 20.0
    max_occupancy: float = 0.85  # the largest share of their time agents may be busy
    shrinkage: float = 0.0  # fraction of paid time not on the phones (breaks, training)

    def __post_init__(self) -> None:
        _check("service_level", self.service_level, 0.0, 1.0, "a fraction above 0 and below 1")
        _check(
            "answer_within_s", self.answer_within_s, 0.0, math.inf, "seconds, 0 or more",
            low_open=False,
        )  # fmt: skip
        _check(
            "max_occupancy", self.max_occupancy, MIN_OCCUPANCY, 1.0,
            f"a fraction from {MIN_OCCUPANCY} to 1", low_open=False, high_open=False,
        )  # fmt: skip
        _check("shrinkage", self.shrinkage, 0.0, 1.0, "a fraction from 0 to below 1",
               low_open=False)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Staffing:
    """What ``agents`` on the phones give; ``scheduled`` adds the shrinkage."""

    agents: int
    scheduled: int
    service_level: float
    occupancy: float
    p_wait: float
    asa_s: float


# Without calls nobody waits and nobody is busy.
NO_TRAFFIC = Staffing(0, 0, service_level=1.0, occupancy=0.0, p_wait=0.0, asa_s=0.0)


def _check(
    parameter: str,
    value: float,
    low: float,
    high: float,
    allowed: str,
    *,
    low_open: bool = True,
    high_open: bool = True,
) -> None:
    ok = (
        math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not ok:
        raise ErlangError(parameter, f"expected {allowed}, got {value!r}")


def _check_traffic(erlangs: float, aht_s: float) -> None:
    _check("erlangs", erlangs, 0.0, MAX_ERLANGS, f"0 to {MAX_ERLANGS:,.0f} Erlangs",
           low_open=False, high_open=False)  # fmt: skip
    _check("aht_s", aht_s, 0.0, math.inf, "a handling time in seconds above 0")


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability with ``agents`` lines and no queue (by the recursion)."""
    if agents < 0:
        raise ErlangError("agents", f"expected 0 or more, got {agents}")
    b = 1.0
    for k in range(1, agents + 1):
        b = erlangs * b / (k + erlangs * b)
    return b


def _erlang_c(agents: int, erlangs: float, b: float) -> float:
    if agents <= erlangs:
        return 1.0  # the queue grows without end: everyone waits
    return agents * b / (agents - erlangs * (1.0 - b))


def erlang_c(agents: int, erlangs: float) -> float:
    """Probability that a call waits (all ``agents`` busy when it arrives)."""
    return _erlang_c(agents, erlangs, erlang_b(agents, erlangs))


def _measure(agents: int, erlangs: float, aht_s: float, within_s: float, b: float) -> Staffing:
    c = _erlang_c(agents, erlangs, b)
    if agents <= erlangs:
        sl, asa = 0.0, math.inf
    else:
        spare = agents - erlangs
        sl = 1.0 - c * math.exp(-spare * within_s / aht_s)
        asa = c * aht_s / spare
    return Staffing(
        agents=agents,
        scheduled=agents,
        service_level=sl,
        occupancy=min(1.0, erlangs / agents) if agents else 0.0,
        p_wait=c,
        asa_s=asa,
    )


def measure(agents: int, erlangs: float, aht_s: float, answer_within_s: float = 20.0) -> Staffing:
    """Service level, occupancy, P(wait) and ASA with ``agents`` (unstable when agents <=
    erlangs: everyone waits, SL 0, ASA infinite)."""
    _check_traffic(erlangs, aht_s)
    _check("answer_within_s", answer_within_s, 0.0, math.inf, "seconds, 0 or more",
           low_open=False)  # fmt: skip
    if agents < 1:
        raise ErlangError("agents", f"expected 1 or more, got {agents}")
    return _measure(agents, erlangs, aht_s, answer_within_s, erlang_b(agents, erlangs))


def scheduled(agents: int, shrinkage: float) -> int:
    """Agents to schedule so that ``agents`` are on the phones after ``shrinkage``."""
    return math.ceil(agents / (1.0 - shrinkage) - _EPSILON)


def staff(erlangs: float, aht_s: float, target: Target | None = None) -> Staffing:
    """The fewest agents meeting ``target`` (service level and occupancy cap) for ``erlangs``
    of traffic with calls of ``aht_s`` on average; no traffic needs no agents."""
    target = target or Target()
    _check_traffic(erlangs, aht_s)
    if erlangs == 0:
        return NO_TRAFFIC
    stable = math.floor(erlangs) + 1  # fewer agents than Erlangs never catch up
    by_occupancy = math.ceil(erlangs / target.max_occupancy - _EPSILON)

    def meets(result: Staffing) -> bool:
        return result.agents >= by_occupancy and result.service_level >= target.service_level

    n = max(stable, by_occupancy, math.ceil(erlangs + math.sqrt(erlangs)))
    b = erlang_b(n, erlangs)
    result = _measure(n, erlangs, aht_s, target.answer_within_s, b)
    if meets(result):
        while n - 1 >= stable:
            below_b = n * b / (erlangs * (1.0 - b))  # B_{n-1} from B_n: the inverse recursion
            below = _measure(n - 1, erlangs, aht_s, target.answer_within_s, below_b)
            if not meets(below):
                break
            n, b, result = n - 1, below_b, below
    else:
        while not meets(result):
            n += 1
            b = erlangs * b / (n + erlangs * b)
            result = _measure(n, erlangs, aht_s, target.answer_within_s, b)
    return Staffing(
        agents=result.agents,
        scheduled=scheduled(result.agents, target.shrinkage),
        service_level=result.service_level,
        occupancy=result.occupancy,
        p_wait=result.p_wait,
        asa_s=result.asa_s,
    )


# -- Erlang A: callers who hang up while waiting -------------------------------------------------

MAX_QUEUE_STATES = 10_000_000  # the chain is summed until its terms vanish; past this they won't


@dataclass(frozen=True, slots=True)
class Abandonment:
    """What ``agents`` give when waiting callers hang up after ``patience_s`` on average."""

    agents: int
    p_wait: float  # a call finds every agent busy
    p_abandon: float  # a call hangs up before an agent answers
    occupancy: float  # answered traffic / agents
    asa_s: float  # mean wait of every call (those who hang up count until they do)


def _log1p_exp(x: float) -> float:
    """log(1 + e^x) without overflow."""
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def erlang_a(agents: int, erlangs: float, aht_s: float, patience_s: float) -> Abandonment:
    """The M/M/N+M queue (Palm's Erlang A) with exponential patience of mean ``patience_s``.

    Its birth-death chain is summed in logarithms: up to ``agents`` busy, the states add up to
    1/B_N times the state N (Erlang B again, by the recursion of its inverse); above, each
    state is the one before times A / (N + j·AHT/patience)."""
    _check_traffic(erlangs, aht_s)
    _check("patience_s", patience_s, 0.0, math.inf, "seconds above 0")
    if agents < 1:
        raise ErlangError("agents", f"expected 1 or more, got {agents}")
    if erlangs == 0:
        return Abandonment(agents, 0.0, 0.0, 0.0, 0.0)
    log_a = math.log(erlangs)
    log_lower = 0.0  # log of 1/B_k: 1/B_k = 1 + (k/A)/B_{k-1}
    for k in range(1, agents + 1):
        log_lower = _log1p_exp(math.log(k) - log_a + log_lower)
    gamma = aht_s / patience_s  # abandonment rate per waiting caller, in units of 1/AHT
    logs: list[float] = []  # log of each state above N, relative to the state N
    term = 0.0
    top = max(0.0, log_lower)  # the largest log so far, so the sums below cannot overflow
    for j in range(1, MAX_QUEUE_STATES + 1):
        denominator = agents + j * gamma
        term += log_a - math.log(denominator)
        logs.append(term)
        top = max(top, term)
        if denominator > erlangs and term < top - 40:
            break  # decreasing, and e^-40 below the largest state: nothing left to add
    else:
        raise ErlangError(
            "patience_s", f"{patience_s:g} s is too long against {aht_s:g} s calls at this traffic"
        )
    waiting = sum(math.exp(s - top) for s in logs)
    queued = sum(j * math.exp(s - top) for j, s in enumerate(logs, start=1))
    total = math.exp(log_lower - top) + waiting
    p_abandon = gamma / erlangs * queued / total
    return Abandonment(
        agents=agents,
        p_wait=(math.exp(-top) + waiting) / total,
        p_abandon=p_abandon,
        occupancy=erlangs * (1.0 - p_abandon) / agents,
        asa_s=queued / total * aht_s / erlangs,
    )
