"""The API under generated requests (schemathesis, from its own OpenAPI document, in process):
whatever the parameters, never a server error."""

from __future__ import annotations

from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.schemas import OpenApiSchema

from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.web.app import create_app
from tests.web.conftest import AUTH


@pytest.fixture
def api_schema(tmp_path: Path) -> OpenApiSchema:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'callpulse.db'}",
        spool_dir=tmp_path / "spool",
        api_token=AUTH["Authorization"].removeprefix("Bearer "),
    )
    with open_store(settings) as store:
        store.upgrade()
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(settings))


def test_no_generated_request_is_a_server_error(api_schema: OpenApiSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 7  # every endpoint, from the document itself
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=25,
            derandomize=True,  # the same requests on every run
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def never_a_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=AUTH, checks=[not_a_server_error])

        never_a_server_error()
