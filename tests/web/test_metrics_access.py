"""/metrics: operational metrics for any scraper, the business figures (last-hour KPI gauges,
calls by status) only with the API token."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from callpulse.analytics import Analytics
from callpulse.config import Settings
from callpulse.metrics import KPI_FAMILIES
from callpulse.signature import SigningKeys
from callpulse.store import open_store
from callpulse.web.app import create_app
from tests.support import SIGNING_KEY, callback_fields, sign
from tests.web.conftest import AUTH

OPERATIONAL = {
    "callpulse_callbacks",
    "callpulse_callback_latency_seconds",
    "callpulse_spool_depth",
    "callpulse_quarantine_entries",
    "callpulse_quarantine_dropped",
    "callpulse_database_up",
    "callpulse_data_problems",
    "callpulse_quarantine_shed",
    "callpulse_rollups_compacted_until_seconds",
}


def _families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


@pytest.fixture
def kpi_queries(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every run of the last-hour KPI query."""
    runs: list[object] = []
    real = Analytics.totals

    def counted(self: Analytics, *args: Any) -> Any:
        runs.append(args)
        return real(self, *args)

    monkeypatch.setattr(Analytics, "totals", counted)
    return runs


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0000000000"}, {"Authorization": "Basic abc"}],
)
def test_without_the_token_only_operational_metrics_and_no_kpi_query(
    client: TestClient, kpi_queries: list[object], headers: dict[str, str]
) -> None:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    families = _families(response.text)
    assert families >= OPERATIONAL
    assert not families & KPI_FAMILIES
    assert kpi_queries == []


def test_with_the_token_the_kpi_gauges_are_added(
    client: TestClient, kpi_queries: list[object]
) -> None:
    families = _families(client.get("/metrics", headers=AUTH).text)
    assert OPERATIONAL | {"callpulse_last_hour", "callpulse_calls"} <= families
    assert len(kpi_queries) == 1
    # Values set by that scrape stay in the process: still not shown without the token.
    assert not _families(client.get("/metrics").text) & KPI_FAMILIES


@pytest.fixture
def open_local_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'callpulse.db'}", spool_dir=tmp_path / "spool"
    )
    with open_store(settings) as store:
        store.upgrade()
    app = create_app(settings, allow_unsigned=True)
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000)) as client:
        yield client


def test_an_open_local_server_shows_everything(
    open_local_client: TestClient, kpi_queries: list[object]
) -> None:
    assert "callpulse_last_hour" in _families(open_local_client.get("/metrics").text)
    assert len(kpi_queries) == 1


def _calls_by_status(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics", headers=AUTH).text
    return {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "callpulse_calls"
        for sample in family.samples
        if sample.name == "callpulse_calls_total"
    }


URL = "http://testserver/callbacks/call-status"


def _post(client: TestClient, fields: dict[str, str]) -> dict[str, object]:
    answer = client.post(URL, data=fields, headers={"X-SignalWire-Signature": sign(URL, fields)})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


@pytest.fixture
def signed_client(settings: Settings) -> Iterator[TestClient]:
    settings = dataclasses.replace(
        settings, signing_keys=SigningKeys.parse(SIGNING_KEY), busy_timeout_ms=50
    )
    with open_store(settings) as store:
        store.upgrade()
    with TestClient(create_app(settings)) as client:
        yield client


def test_stored_calls_are_counted_once_by_status(signed_client: TestClient) -> None:
    before = _calls_by_status(signed_client)
    # Every status is there from the first scrape, so a rate over it starts at the first call.
    assert set(before) == {"completed", "failed", "other"}
    completed = callback_fields(CallStatus="completed")
    sent = [
        completed,
        completed,  # a retry: stored once, counted once
        callback_fields(CallStatus="failed", CallDuration="", AudioInMos=""),
        callback_fields(CallStatus="busy", CallDuration="", AudioInMos=""),
        callback_fields(CallStatus="Nonsense-Status"),
    ]
    for fields in sent:
        _post(signed_client, fields)
    bad = callback_fields(CallStatus="failed")
    assert signed_client.post(
        URL, data=bad, headers={"X-SignalWire-Signature": "x"}
    ).is_client_error
    after = _calls_by_status(signed_client)
    assert {status: after[status] - before[status] for status in after} == {
        "completed": 1,
        "failed": 1,
        "other": 2,
    }


def test_a_spooled_call_is_counted_and_not_again_when_the_spool_drains(
    signed_client: TestClient, settings: Settings
) -> None:
    before = _calls_by_status(signed_client)["failed"]
    blocker = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    blocker.execute("BEGIN IMMEDIATE")  # the database refuses writes: callbacks go to the spool
    try:
        answer = _post(signed_client, callback_fields(CallStatus="failed", CallDuration=""))
    finally:
        blocker.rollback()
        blocker.close()
    assert answer["result"] == "spooled"
    deadline = time.monotonic() + 10
    while signed_client.app.state.writer.spool.depth() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert signed_client.app.state.writer.spool.depth() == 0, "the spool did not drain"
    assert _calls_by_status(signed_client)["failed"] - before == 1
