from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callpulse.config import Settings
from callpulse.store import Store, open_store
from tests.support import postgres_schema


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on both backends: a SQLite file and a schema on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'calls.db'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    backend = open_store(Settings(database_url=database_url, quarantine_max_entries=5))
    backend.upgrade()
    yield backend
    backend.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the real PostgreSQL, for tests of that backend alone."""
    with postgres_schema() as url:
        yield url
