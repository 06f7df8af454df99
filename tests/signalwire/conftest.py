from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EmulatorProcess


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    """A running `callpulse emulate` with the test credentials and no numbers."""
    proc = EmulatorProcess(tmp_path).start()
    yield proc
    proc.stop()
