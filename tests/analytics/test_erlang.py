"""Erlang C (callpulse.analytics.erlang) against the published vectors, a discrete-event M/M/N
queue simulated here, and properties that must hold for any traffic."""

from __future__ import annotations

import heapq
import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpulse.analytics.erlang import (
    MAX_ERLANGS,
    ErlangError,
    Target,
    erlang_a,
    erlang_b,
    erlang_c,
    measure,
    scheduled,
    staff,
)

# Call Centre Helper's worked example: 100 calls in 30 minutes of 180 s -> 10 Erlangs.
AHT = 180.0
A = 100 / 1800 * AHT


def test_the_worked_example_needs_14_agents() -> None:
    assert round(A, 9) == 10.0
    got = staff(A, AHT)  # the defaults: 80 % within 20 s, occupancy at most 0.85, no shrinkage
    assert (got.agents, got.scheduled) == (14, 14)
    assert got.service_level == pytest.approx(0.888, abs=5e-4)
    assert got.occupancy == pytest.approx(0.714, abs=5e-4)
    assert got.p_wait == pytest.approx(0.174, abs=5e-4)
    assert got.asa_s == pytest.approx(0.174 * AHT / 4, rel=2e-3)  # C * AHT / (N - A)


def test_13_agents_just_miss_the_target() -> None:
    got = measure(13, A, AHT, answer_within_s=20)
    assert got.service_level == pytest.approx(0.796, abs=5e-4)
    assert got.service_level < 0.8


def test_an_occupancy_cap_of_070_needs_15_agents() -> None:
    got = staff(A, AHT, Target(max_occupancy=0.70))
    assert got.agents == 15
    assert got.service_level == pytest.approx(0.941, abs=5e-4)


@pytest.mark.parametrize(("max_occupancy", "agents", "rostered"), [(0.85, 14, 20), (0.70, 15, 22)])
def test_shrinkage_is_scheduled_on_top(max_occupancy: float, agents: int, rostered: int) -> None:
    got = staff(A, AHT, Target(max_occupancy=max_occupancy, shrinkage=0.30))
    assert (got.agents, got.scheduled) == (agents, rostered)  # 14 / 0.7 is 20, not 21


# Tijms, A First Course in Stochastic Models, Table 5.3.2: least N with P(delay) <= p.
TIJMS = [
    (10, 0.5, 12), (10, 0.2, 14), (10, 0.1, 16),
    (100, 0.5, 106), (100, 0.2, 111), (100, 0.1, 115),
    (1000, 0.5, 1017), (1000, 0.2, 1034), (1000, 0.1, 1046),
    (100_000, 0.2, 100_337),  # large traffic, beta about 1.07
]  # fmt: skip


def least_agents_with_delay_at_most(erlangs: float, p_delay: float) -> int:
    # Answered within 0 s means not delayed: SL = 1 - P(delay); no occupancy cap.
    target = Target(service_level=1 - p_delay, answer_within_s=0, max_occupancy=1.0)
    return staff(erlangs, AHT, target).agents


@pytest.mark.parametrize(("erlangs", "p_delay", "agents"), TIJMS)
def test_tijms_table(erlangs: float, p_delay: float, agents: int) -> None:
    assert least_agents_with_delay_at_most(erlangs, p_delay) == agents
    assert erlang_c(agents, erlangs) <= p_delay < erlang_c(agents - 1, erlangs)


def test_erlang_b_recursion_matches_the_closed_form() -> None:
    for agents, erlangs in ((0, 3.0), (1, 0.5), (5, 2.0), (12, 10.0), (30, 27.5)):
        terms = [erlangs**k / math.factorial(k) for k in range(agents + 1)]
        assert erlang_b(agents, erlangs) == pytest.approx(terms[-1] / sum(terms), rel=1e-12)


def test_thousands_of_erlangs_stay_finite() -> None:
    # Factorials and powers would overflow long before this; the recursion does not.
    for erlangs in (5_000.0, 50_000.0, MAX_ERLANGS):
        got = staff(erlangs, AHT)
        assert erlangs < got.agents < erlangs * 1.2
        assert 0.8 <= got.service_level <= 1.0
        assert all(math.isfinite(v) for v in (got.p_wait, got.asa_s, got.occupancy))


def test_no_traffic_needs_no_agents() -> None:
    got = staff(0.0, AHT, Target(shrinkage=0.5))
    assert (got.agents, got.scheduled, got.p_wait, got.asa_s) == (0, 0, 0.0, 0.0)
    assert got.service_level == 1.0


def test_too_few_agents_never_catch_up() -> None:
    got = measure(10, 10.0, AHT)
    assert (got.p_wait, got.service_level, got.asa_s) == (1.0, 0.0, math.inf)


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        (lambda: Target(service_level=0.0), "service_level"),
        (lambda: Target(service_level=1.0), "service_level"),
        (lambda: Target(service_level=math.nan), "service_level"),
        (lambda: Target(answer_within_s=-1), "answer_within_s"),
        (lambda: Target(max_occupancy=1.01), "max_occupancy"),
        (lambda: Target(max_occupancy=0.05), "max_occupancy"),
        (lambda: Target(shrinkage=1.0), "shrinkage"),
        (lambda: Target(shrinkage=-0.1), "shrinkage"),
        (lambda: staff(-1.0, AHT), "erlangs"),
        (lambda: staff(MAX_ERLANGS * 2, AHT), "erlangs"),
        (lambda: staff(math.inf, AHT), "erlangs"),
        (lambda: staff(10.0, 0.0), "aht_s"),
        (lambda: measure(0, 10.0, AHT), "agents"),
        (lambda: erlang_b(-1, 10.0), "agents"),
    ],
)
def test_out_of_range_inputs_name_the_parameter(make: object, parameter: str) -> None:
    with pytest.raises(ErlangError) as caught:
        make()  # type: ignore[operator]
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"{parameter}: expected ")
    assert isinstance(caught.value, ValueError)


# -- against a simulated queue --------------------------------------------------------------------


def simulate_mmn(
    erlangs: float,
    agents: int,
    aht_s: float,
    within_s: float,
    calls: int,
    seed: int,
    patience_s: float | None = None,
) -> tuple[float, float, float, float]:
    """First-come first-served M/M/N: Poisson arrivals, exponential handling, each call taken by
    the agent free first; with ``patience_s``, each caller hangs up after an exponential
    patience of that mean (and takes no agent). Returns (share that waited, share answered
    within ``within_s``, mean wait, share that hung up), after a warm-up of a tenth of the
    calls."""
    rng = random.Random(seed)
    rate = erlangs / aht_s
    free_at = [0.0] * agents  # when each agent is next free, as a heap
    now = 0.0
    warm_up = calls // 10
    waited = answered = abandoned = 0
    total_wait = 0.0
    for i in range(calls + warm_up):
        now += rng.expovariate(rate)
        start = max(now, free_at[0])
        patience = math.inf if patience_s is None else rng.expovariate(1 / patience_s)
        gives_up = start - now > patience
        if not gives_up:  # FCFS: a caller who hangs up frees the place for the next
            heapq.heapreplace(free_at, start + rng.expovariate(1 / aht_s))
        if i >= warm_up:
            wait = min(start - now, patience)
            waited += start > now
            answered += not gives_up and wait <= within_s
            abandoned += gives_up
            total_wait += wait
    return waited / calls, answered / calls, total_wait / calls, abandoned / calls


@pytest.mark.parametrize(
    ("erlangs", "agents", "seed"), [(10.0, 14, 11), (10.0, 12, 12), (50.0, 58, 13)]
)
def test_erlang_c_matches_a_simulated_queue(erlangs: float, agents: int, seed: int) -> None:
    p_wait, sl, mean_wait, _ = simulate_mmn(erlangs, agents, AHT, 20.0, 300_000, seed)
    exact = measure(agents, erlangs, AHT, answer_within_s=20.0)
    # Busy periods make successive waits correlated: over seeds the share that waited spreads
    # by about 0.005 here (several times the binomial spread), the mean wait by about 7 %.
    tolerance = 0.02
    assert p_wait == pytest.approx(exact.p_wait, abs=tolerance)
    assert sl == pytest.approx(exact.service_level, abs=tolerance)
    assert mean_wait == pytest.approx(exact.asa_s, rel=0.2)
    # Meaningful: one agent more or fewer moves both figures by more than the tolerance.
    for neighbour in (agents - 1, agents + 1):
        other = measure(neighbour, erlangs, AHT, answer_within_s=20.0)
        assert abs(other.p_wait - exact.p_wait) > tolerance
        assert abs(other.service_level - exact.service_level) > tolerance


# -- Erlang A --------------------------------------------------------------------------------------


def test_erlang_a_published_example() -> None:
    # The worked example with a mean patience of 5 minutes and 14 agents.
    got = erlang_a(14, A, AHT, patience_s=300)
    assert got.p_wait == pytest.approx(0.14526, abs=5e-6)
    assert got.p_abandon == pytest.approx(0.013984, abs=5e-7)
    assert got.occupancy == pytest.approx(0.704297, abs=5e-7)


def test_erlang_a_without_hanging_up_is_erlang_c() -> None:
    for agents, erlangs in ((14, 10.0), (111, 100.0), (1034, 1000.0)):
        patient = erlang_a(agents, erlangs, AHT, patience_s=1e9)
        exact = measure(agents, erlangs, AHT)
        assert patient.p_wait == pytest.approx(exact.p_wait, rel=1e-5)
        assert patient.asa_s == pytest.approx(exact.asa_s, rel=1e-4)
        assert patient.p_abandon < 1e-6


@pytest.mark.parametrize(
    ("erlangs", "agents", "patience_s", "seed"),
    [(10.0, 14, 300.0, 21), (10.0, 10, 120.0, 22), (20.0, 15, 60.0, 23)],
)
def test_erlang_a_matches_a_simulated_queue(
    erlangs: float, agents: int, patience_s: float, seed: int
) -> None:
    # 10 and 20 Erlangs on 10 and 15 agents: overloaded, kept finite only by callers hanging up.
    p_wait, _, mean_wait, abandoned = simulate_mmn(
        erlangs, agents, AHT, 20.0, 300_000, seed, patience_s
    )
    exact = erlang_a(agents, erlangs, AHT, patience_s)
    assert p_wait == pytest.approx(exact.p_wait, abs=0.02)
    assert abandoned == pytest.approx(exact.p_abandon, abs=0.01)
    assert mean_wait == pytest.approx(exact.asa_s, rel=0.15)


def test_erlang_a_checks_its_inputs() -> None:
    for call, parameter in (
        (lambda: erlang_a(14, A, AHT, patience_s=0.0), "patience_s"),
        (lambda: erlang_a(0, A, AHT, patience_s=300.0), "agents"),
        (lambda: erlang_a(14, -1.0, AHT, patience_s=300.0), "erlangs"),
    ):
        with pytest.raises(ErlangError) as caught:
            call()
        assert caught.value.parameter == parameter
    assert erlang_a(3, 0.0, AHT, 300.0).p_wait == 0.0


# -- properties -----------------------------------------------------------------------------------

traffic = st.floats(min_value=0.05, max_value=2000.0, allow_nan=False)
handling = st.floats(min_value=5.0, max_value=3600.0, allow_nan=False)
targets = st.builds(
    Target,
    service_level=st.floats(min_value=0.05, max_value=0.99),
    answer_within_s=st.floats(min_value=0.0, max_value=120.0),
    max_occupancy=st.floats(min_value=0.5, max_value=1.0),
    shrinkage=st.floats(min_value=0.0, max_value=0.6),
)
PROFILE = settings(max_examples=150, deadline=None, database=None, derandomize=True)


@PROFILE
@given(erlangs=traffic, aht_s=handling, target=targets)
def test_the_answer_is_the_least_that_meets_the_target(
    erlangs: float, aht_s: float, target: Target
) -> None:
    got = staff(erlangs, aht_s, target)
    assert got.agents > erlangs
    assert got.service_level >= target.service_level
    assert got.occupancy <= target.max_occupancy + 1e-12
    assert got.scheduled >= got.agents
    assert got.scheduled * (1 - target.shrinkage) >= got.agents - 1e-9
    assert (got.scheduled - 1) * (1 - target.shrinkage) < got.agents
    one_fewer = got.agents - 1
    if one_fewer > erlangs:
        fewer = measure(one_fewer, erlangs, aht_s, target.answer_within_s)
        assert fewer.service_level < target.service_level or fewer.occupancy > target.max_occupancy


@PROFILE
@given(erlangs=traffic, aht_s=handling, within=st.floats(min_value=0.0, max_value=120.0))
def test_more_agents_never_serve_worse(erlangs: float, aht_s: float, within: float) -> None:
    first = math.floor(erlangs) + 1
    results = [measure(n, erlangs, aht_s, within) for n in range(first, first + 8)]
    for fewer, more in itertools.pairwise(results):
        assert more.service_level >= fewer.service_level
        assert more.p_wait <= fewer.p_wait
        assert more.asa_s <= fewer.asa_s
        assert more.occupancy < fewer.occupancy
    for result in results:
        assert 0.0 <= result.p_wait <= 1.0
        assert 1.0 - result.p_wait <= result.service_level + 1e-12  # waited 0 s means answered
        assert erlang_b(result.agents, erlangs) <= result.p_wait  # queueing waits more than loss


@PROFILE
@given(erlangs=traffic, aht_s=handling, target=targets)
def test_more_traffic_never_needs_fewer_agents(
    erlangs: float, aht_s: float, target: Target
) -> None:
    assert staff(erlangs * 1.5, aht_s, target).agents >= staff(erlangs, aht_s, target).agents


@given(agents=st.integers(min_value=0, max_value=5000), shrinkage=st.floats(0.0, 0.9))
@PROFILE
def test_scheduled_is_the_least_that_covers_the_shrinkage(agents: int, shrinkage: float) -> None:
    rostered = scheduled(agents, shrinkage)
    assert rostered * (1 - shrinkage) >= agents - 1e-6
    assert rostered == 0 or (rostered - 1) * (1 - shrinkage) < agents


@PROFILE
@given(
    erlangs=st.floats(min_value=0.05, max_value=500.0),
    aht_s=handling,
    patience_s=st.floats(min_value=5.0, max_value=3600.0),
    spare=st.integers(min_value=-5, max_value=30),
)
def test_erlang_a_is_a_distribution_and_more_agents_help(
    erlangs: float, aht_s: float, patience_s: float, spare: int
) -> None:
    agents = max(1, math.floor(erlangs) + spare)
    fewer, more = (erlang_a(n, erlangs, aht_s, patience_s) for n in (agents, agents + 1))
    for got in (fewer, more):
        assert 0.0 <= got.p_abandon <= got.p_wait <= 1.0
        assert 0.0 <= got.occupancy <= 1.0 + 1e-9
    assert more.p_wait <= fewer.p_wait + 1e-12
    assert more.p_abandon <= fewer.p_abandon + 1e-12
    if agents > erlangs:  # hanging up only shortens the queue Erlang C has
        assert fewer.p_wait <= erlang_c(agents, erlangs) + 1e-9
