from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from callpulse.config import Settings
from callpulse.signature import url_variants
from callpulse.store import Store, open_store
from tests.support import BACKENDS, ServerProcess, backend_database, postgres_schema

# in the running virtualenv (also when mutmut runs the tests from a copy of the project)
SDK3_VALIDATOR = Path(sys.prefix, "signalwire-sdk3/signalwire/core/security/webhook_validator.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, a test marked ``alone`` would stop PostgreSQL beneath the other worker's
    tests: it is skipped there, and runs in scripts/test's second, serial pass."""
    if not hasattr(config, "workerinput"):
        return
    skip = pytest.mark.skip(reason="stops PostgreSQL under the other workers: run it with -m alone")
    for item in items:
        if item.get_closest_marker("alone"):
            item.add_marker(skip)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Tests that store anything run on both backends: SQLite and the real PostgreSQL."""
    return str(request.param)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store, writer and spool test runs on both backends: a SQLite file and a schema on
    the real PostgreSQL."""
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
def server(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A running `callpulse serve` with its own spool and database: a SQLite file in its
    directory, or a fresh schema on the test PostgreSQL."""
    with backend_database(backend, tmp_path) as url:
        proc = ServerProcess(tmp_path, database_url=url).start()
        yield proc
        proc.stop()


@pytest.fixture(autouse=True)
def _uncached_url_variants() -> None:
    """Each test computes the URL variants it checks (none left over from an earlier test)."""
    url_variants.cache_clear()


@pytest.fixture(scope="session")
def sdk() -> ModuleType:
    """``signalwire-sdk`` 3.7.5's webhook validator, loaded by path: its import name
    ``signalwire`` is taken by the 2.x client of the test extras."""
    if not SDK3_VALIDATOR.is_file():
        pytest.fail(
            f"{SDK3_VALIDATOR} is missing: run scripts/test, which installs signalwire-sdk==3.7.5 "
            "into .venv/signalwire-sdk3"
        )
    spec = importlib.util.spec_from_file_location(
        "signalwire_sdk3_webhook_validator", SDK3_VALIDATOR
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
