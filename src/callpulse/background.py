"""A daemon thread of ``serve``'s periodic work (alert rounds, rollup compaction): off the event
loop, so a slow database never stalls ingest, and stopped within ``stop``'s timeout."""

from __future__ import annotations

import abc
import threading


class Background(abc.ABC):
    def __init__(self, name: str) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @abc.abstractmethod
    def _run(self) -> None:
        """Until ``self._stopping`` is set."""
