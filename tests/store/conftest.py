from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import postgres_schema


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the real PostgreSQL, for tests of that backend alone."""
    with postgres_schema() as url:
        yield url
