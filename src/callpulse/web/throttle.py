"""Failed attempts per client, so the log-in cannot be used to guess the token at speed.

In-process and bounded: each process counts its own clients (the limit is per process), and
beyond ``max_clients`` the least recently failing ones are forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class FailureThrottle:
    def __init__(
        self,
        limit: int = 5,
        window_s: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()  # first failure, count

    def _current(self, client: str, now: float) -> tuple[float, int] | None:
        entry = self._failures.get(client)
        if entry is not None and now - entry[0] >= self.window_s:
            del self._failures[client]  # its window is over
            return None
        return entry

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        now = self._clock()
        entry = self._current(client, now)
        if entry is None or entry[1] < self.limit:
            return None
        return max(1, math.ceil(entry[0] + self.window_s - now))

    def failed(self, client: str) -> None:
        now = self._clock()
        first, count = self._current(client, now) or (now, 0)
        self._failures[client] = (first, count + 1)
        self._failures.move_to_end(client)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
