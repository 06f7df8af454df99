from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.web.app import create_app

TOKEN = "in-process-token-3b9d27e1c4"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'callpulse.db'}",
        spool_dir=tmp_path / "spool",
        api_token=TOKEN,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The whole app in this process (lifespan included) on an upgraded SQLite file, with an API
    token configured."""
    with open_store(settings) as store:
        store.upgrade()
    with TestClient(create_app(settings)) as test_client:
        yield test_client
