from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from callpulse.alerts.engine import run_round
from callpulse.alerts.rules import Rule
from callpulse.analytics import Analytics
from callpulse.config import Settings
from callpulse.store import open_store
from tests.alerts.conftest import NOW, writer_of
from tests.web.conftest import AUTH

RULE = Rule("low-mos", "mos_p50", per="to", min_calls=5, trigger=3.5, reset=3.8)


def _degrade_and_recover(settings: Settings) -> None:
    with open_store(settings) as store:
        add = writer_of(store)
        add(10, to="+18005550001", mos=4.4)
        add(10, to="+18005550002", mos=2.8)
        analytics = Analytics(store, settings)
        run_round(store, analytics, [RULE], NOW)
        add(10, to="+18005550001", mos=2.9, ago=timedelta(minutes=-1))
        add(20, to="+18005550002", mos=4.3, ago=timedelta(minutes=-1))
        run_round(store, analytics, [RULE], NOW + timedelta(minutes=2))


def test_active_and_history(client: TestClient, settings: Settings) -> None:
    _degrade_and_recover(settings)
    answer = client.get("/api/v1/alerts", headers=AUTH)
    assert answer.status_code == 200
    body = answer.json()
    (active,) = body["active"]
    assert {k: active[k] for k in ("rule", "state", "scope", "value", "threshold")} == {
        "rule": "low-mos", "state": "firing", "scope": "to=+18005550001", "value": 2.9,
        "threshold": 3.5,
    }  # fmt: skip
    # The configured rule of that name (here the shipped default) gives metric and severity.
    assert (active["metric"], active["severity"]) == ("mos_p50", "warning")
    assert active["started_at"].startswith("2024-04-04T18:02:00")
    assert active["resolved_at"] is None
    assert [(h["state"], h["scope"]) for h in body["history"]] == [
        ("resolved", "to=+18005550002"),  # one round goes by number: 0002's is the newest
        ("firing", "to=+18005550001"),
        ("firing", "to=+18005550002"),
    ]  # fmt: skip
    resolved = body["history"][0]
    assert resolved["resolved_at"].startswith("2024-04-04T18:02:00")
    assert resolved["started_at"].startswith("2024-04-04T18:00:00")
    one = client.get("/api/v1/alerts?limit=1&rule=low-mos", headers=AUTH).json()
    assert len(one["history"]) == 1
    assert client.get("/api/v1/alerts?rule=nope", headers=AUTH).json() == {
        "active": [], "history": [],
    }  # fmt: skip


def test_refused_without_the_token_and_bad_parameters_named(client: TestClient) -> None:
    assert client.get("/api/v1/alerts").status_code == 401
    bad = client.get("/api/v1/alerts?limit=0", headers=AUTH)
    assert bad.status_code == 400 and bad.json()["parameter"] == "limit"
    assert "/alerts" in client.get("/api/v1/openapi.json").json()["paths"]


def test_metrics_gauge_per_rule_and_state(client: TestClient, settings: Settings) -> None:
    _degrade_and_recover(settings)
    text = client.get("/metrics", headers=AUTH).text
    assert 'callpulse_alerts{rule="low-mos",state="firing"} 1.0' in text
    assert 'callpulse_alerts{rule="low-mos",state="ok"} 1.0' in text  # the resolved one
    assert 'callpulse_alerts{rule="success-rate",state="firing"} 0.0' in text  # a default
    assert "callpulse_alerts" not in client.get("/metrics").text  # business figures: token only
