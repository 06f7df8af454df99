"""`callpulse simulate --processes N`: the calls and the rate shared among sending processes,
so that the sender is not what limits a receiver; their tallies summed up."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from callpulse.errors import CallpulseError
from callpulse.simulate import (
    ReceiverSender,
    Tally,
    backlog_calls,
    live_calls,
    send_calls,
    stop_on_signals,
)
from callpulse.traffic import TrafficModel

PROGRESS_EVERY = 50  # answers between updates of the shared counter


@dataclass(frozen=True)
class Share:
    """One process's part of a run."""

    url: str
    signing_key: str
    account_sid: str
    numbers: list[str]
    backfill: timedelta | None
    count: int
    rate: float  # calls per second; 0: as fast as answers come
    concurrency: int
    seed: int


def _run_share(share: Share, answered: Synchronized[int], results: Any) -> None:
    """In a child process: send the share, count answers into ``answered``, put the tally."""
    rng = random.Random(share.seed)
    model = TrafficModel(rng, share.numbers)
    calls = (
        backlog_calls(model, share.count, share.backfill)
        if share.backfill
        else live_calls(model, share.count)
    )
    sender = ReceiverSender(share.url, share.signing_key, share.account_sid, share.concurrency)
    pending = 0

    def counted(*_: object) -> None:
        nonlocal pending
        pending += 1
        if pending == PROGRESS_EVERY:
            with answered.get_lock():
                answered.value += pending
            pending = 0

    async def main() -> Tally:
        stop = asyncio.Event()
        with stop_on_signals(stop):
            return await send_calls(
                sender, calls, rng, rate=share.rate or None, concurrency=share.concurrency,
                on_answer=counted, stop=stop,
            )  # fmt: skip

    tally = asyncio.run(main())
    with answered.get_lock():
        answered.value += pending
    results.put(tally)


def send_in_processes(shares: list[Share], on_progress: Callable[[int], None]) -> Tally:
    """Runs each share in a process of its own, telling ``on_progress`` the calls answered so
    far; Ctrl-C stops them all (each finishes the calls in flight and reports)."""
    context = multiprocessing.get_context("spawn")  # nothing of this process's state inherited
    answered = context.Value("q", 0)
    results = context.Queue()
    children = [context.Process(target=_run_share, args=(s, answered, results), daemon=True)
                for s in shares]  # fmt: skip
    tally = Tally()
    reported = 0
    # Ctrl-C reaches the children too; this process waits for their tallies meanwhile.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for child in children:
            child.start()
        while reported < len(children):
            try:
                tally.merge(results.get(timeout=0.2))
                reported += 1
            except queue.Empty:
                dead = [c for c in children if c.exitcode not in (None, 0)]
                if dead:
                    raise CallpulseError(
                        f"a sending process stopped with exit code {dead[0].exitcode}"
                    ) from None
            on_progress(answered.value)
    finally:
        signal.signal(signal.SIGINT, previous)
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.terminate()
    return tally
