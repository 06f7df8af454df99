from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callpulse.config import Settings
from callpulse.store import Store, open_store
from tests.support import backend_database


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    """A fresh, upgraded store on each backend (SQLite file, PostgreSQL schema)."""
    with backend_database(backend, tmp_path) as url:
        opened = open_store(Settings(database_url=url))
        opened.upgrade()
        yield opened
        opened.close()
