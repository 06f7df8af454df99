"""Bad requests in process: a 400 naming the parameter and the expected form, JSON 404s."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from tests.web.conftest import AUTH


def _cursor(values: list[int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "params", "parameter", "words"),
    [
        ("/summary", {"since": "9999-12-31T23:59:59-01:00"}, "since", "out of range"),
        ("/summary", {"until": "0001-01-01T00:00:00+01:00"}, "until", "out of range"),
        ("/summary", {"until": "0001-01-01T00:00:00Z"}, "until", "years 1970 to 8999"),
        ("/timeseries", {"since": "9999-12-31T00:00:00Z"}, "since", "out of range"),
        ("/summary", {"since": "7 days"}, "since", "expected an ISO 8601 time"),
        ("/summary", {"until": "0d"}, "until", "or an age such as 24h or 7d"),
        ("/summary", {"since": "999999999d"}, "since", "years 1970 to 8999"),
        ("/summary", {"since": "x" * 65}, "since", "expected an ISO 8601 time"),
        ("/quarantine", {"cursor": _cursor([2**70])}, "cursor", "next_cursor"),
        ("/quarantine", {"cursor": _cursor([-(2**63) - 1])}, "cursor", "next_cursor"),
        ("/calls", {"cursor": _cursor([2**63, 1])}, "cursor", "next_cursor"),
    ],
)
def test_out_of_range_values_are_a_400_naming_the_parameter(
    client: TestClient, path: str, params: dict[str, str], parameter: str, words: str
) -> None:
    response = client.get(f"/api/v1{path}", params=params, headers=AUTH)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["parameter"] == parameter
    assert body["error"].startswith(f"{parameter}: ")
    assert words in body["error"]


def test_an_unparsable_time_names_the_expected_form_not_the_validator(
    client: TestClient,
) -> None:
    answer = client.get("/api/v1/summary", params={"since": "yesterday"}, headers=AUTH)
    assert answer.json() == {
        "error": "since: expected an ISO 8601 time such as 2024-04-04T18:00:00Z (no offset "
        "means UTC) or an age such as 24h or 7d, got 'yesterday'",
        "parameter": "since",
    }


@pytest.mark.parametrize(
    ("since", "until", "span"),
    [
        ("7d", None, timedelta(days=7)),
        ("24h", None, timedelta(hours=24)),
        ("90m", "30m", timedelta(minutes=60)),
        ("2024-04-04T00:00:00Z", "2024-04-05T00:00:00+02:00", timedelta(hours=22)),
        ("2024-04-04", "2024-04-05T00:00:00", timedelta(days=1)),
    ],
)
def test_the_api_takes_the_ages_and_times_the_cli_takes(
    client: TestClient, since: str, until: str | None, span: timedelta
) -> None:
    params = {"since": since} | ({"until": until} if until else {})
    before = datetime.now(UTC)
    response = client.get("/api/v1/summary", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    start, end = (datetime.fromisoformat(body[k]) for k in ("since", "until"))
    assert end - start == span
    if until is None:  # an age counts back from now
        assert before - timedelta(seconds=1) <= end <= datetime.now(UTC)


def test_the_largest_cursor_values_are_still_cursors(client: TestClient) -> None:
    response = client.get(
        "/api/v1/quarantine", params={"cursor": _cursor([2**63 - 1])}, headers=AUTH
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nothing-here", 404),
        ("GET", "/static/nothing.js", 404),
        ("GET", "/login", 405),
    ],
)
def test_routing_failures_outside_the_api_are_json(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path, headers=AUTH)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]


@pytest.mark.parametrize(("path", "allowed"), [("/api/v1/summary", "GET"), ("/login", "POST")])
def test_a_wrong_method_names_the_right_one(client: TestClient, path: str, allowed: str) -> None:
    response = client.delete(path, headers=AUTH)
    assert response.status_code == 405
    assert response.json()["error"] == f"DELETE is not allowed on {path}: use {allowed}"


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/v1", "/api/v2/summary", "/api/v1/nope"])
def test_unknown_api_paths_are_the_apis_json_404(client: TestClient, path: str) -> None:
    response = client.get(path, headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {
        "error": "no such endpoint: see /api/v1/openapi.json",
        "parameter": None,
    }


@pytest.mark.parametrize(
    "path", ["/callbacks/call-status/", "/api/v1/summary/", "/healthz/", "/metrics/"]
)
def test_a_trailing_slash_is_a_json_404_not_a_redirect_to_the_host_header(
    client: TestClient, path: str
) -> None:
    response = client.get(
        path, headers={**AUTH, "Host": "attacker.example"}, follow_redirects=False
    )
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["error"]
