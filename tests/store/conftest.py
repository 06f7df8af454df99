from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callpulse.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    sqlite_store = SQLiteStore(tmp_path / "calls.db", quarantine_max_entries=5)
    sqlite_store.upgrade()
    yield sqlite_store
    sqlite_store.close()
