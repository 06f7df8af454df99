from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import BACKENDS, ServerProcess, backend_database


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Tests that store anything run on both backends: SQLite and the real PostgreSQL."""
    return str(request.param)


@pytest.fixture
def server(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A running `callpulse serve` with its own spool and database: a SQLite file in its
    directory, or a fresh schema on the test PostgreSQL."""
    with backend_database(backend, tmp_path) as url:
        proc = ServerProcess(tmp_path, database_url=url).start()
        yield proc
        proc.stop()
