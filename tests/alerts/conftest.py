from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callpulse.callback import CallRecord
from callpulse.config import Settings
from callpulse.store import Store, open_store
from callpulse.store.base import CallWrite
from tests.support import ACCOUNT_SID, backend_database

NOW = datetime(2024, 4, 4, 18, 0, tzinfo=UTC)  # a Thursday


Calls = Callable[..., None]


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    with backend_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A fresh, upgraded store on each backend (SQLite file, PostgreSQL schema)."""
    opened = open_store(Settings(database_url=database_url))
    opened.upgrade()
    yield opened
    opened.close()


@pytest.fixture
def add_calls(store: Store) -> Calls:
    """Store ``count`` calls to ``to`` starting ``ago`` before NOW, a second apart."""
    return writer_of(store)


def writer_of(store: Store) -> Calls:
    serial = iter(range(10**9))

    def add(
        count: int,
        *,
        to: str = "+18005550001",
        ago: timedelta = timedelta(minutes=10),
        status: str = "completed",
        mos: float | None = 4.4,
    ) -> None:
        start = NOW - ago
        store.write_batch(
            [
                CallWrite(
                    CallRecord(
                        account_sid=ACCOUNT_SID,
                        call_sid=f"call-{next(serial)}",
                        from_number="+15551234567",
                        to_number=to,
                        started_at=start + timedelta(seconds=i),
                        status=status,
                        duration_s=60,
                        mos=mos,
                    ),
                    start + timedelta(seconds=i + 60),
                )
                for i in range(count)
            ]
        )

    return add
