from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running `callpulse serve` with its own SQLite database and spool."""
    proc = ServerProcess(tmp_path).start()
    yield proc
    proc.stop()
