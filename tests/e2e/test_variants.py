"""End to end: callbacks as real senders send them, signed with the official validators, are
stored with their data problems on both backends and read back through the export and the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_receiver_http import body_hash_url, export_rows, sw_sign, twilio_sign
from tests.support import BACKENDS, ServerProcess, backend_database, callback_fields

TOKEN = "variants-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# name: (fields to change (None: leave the field out), what is stored, fields with problems)
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], list[str]]] = {
    "failed, empty MOS": (
        {"CallStatus": "failed", "CallDuration": "0", "AudioInMos": ""},
        {"status": "failed", "duration_s": 0, "mos": None},
        [],
    ),
    "failed, no MOS nor duration": (
        {"CallStatus": "failed", "CallDuration": None, "AudioInMos": None},
        {"status": "failed", "duration_s": None, "mos": None},
        [],
    ),
    "failed, MOS 0": (
        {"CallStatus": "failed", "AudioInMos": "0"},
        {"status": "failed", "mos": None},
        [],
    ),
    "completed without MOS": ({"AudioInMos": ""}, {"mos": None}, ["AudioInMos"]),
    "MOS out of range": ({"AudioInMos": "7.2"}, {"mos": None}, ["AudioInMos"]),
    "decimal duration": ({"CallDuration": "142.0"}, {"duration_s": 142}, []),
    "rounded duration": ({"CallDuration": "141.6"}, {"duration_s": 142}, []),
    "SIP caller": ({"From": "sip:alice@example.com"}, {"from": "sip:alice@example.com"}, []),
    "client caller": ({"From": "client:tommy"}, {"from": "client:tommy"}, []),
    "SIP called": (
        {"To": "sip:support@pbx.example.com"},
        {"to": "sip:support@pbx.example.com"},
        [],
    ),
    "GMT timestamp": (
        {"Timestamp": "Thu, 4 Apr 2024 18:32:15 GMT"},
        {"started_at": "2024-04-04T18:32:15Z"},
        [],
    ),
    "long weekday and month": (
        {"Timestamp": "Thur, 20 Sept 2018 18:00:00 +0000"},
        {"started_at": "2018-09-20T18:00:00Z"},
        [],
    ),
    "Unix timestamp": ({"Timestamp": "1712255535"}, {"started_at": "2024-04-04T18:32:15Z"}, []),
    "timestamp past 9999 in UTC": ({"Timestamp": "9999-12-31T23:59:59-01:00"}, {}, ["Timestamp"]),
    "timestamp in 1050": ({"Timestamp": "1050-01-01T00:00:00Z"}, {}, ["Timestamp"]),
    "no status": ({"CallStatus": None}, {"status": "unknown"}, ["CallStatus"]),
    "odd caller": ({"From": "15551234567"}, {"from": "15551234567"}, ["From"]),
}


@pytest.fixture(scope="module", params=BACKENDS)
def api_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp(f"variants-{request.param}")
    with backend_database(str(request.param), workdir) as url:
        proc = ServerProcess(workdir, env={"CALLPULSE_API_TOKEN": TOKEN}, database_url=url)
        proc.start()
        yield proc
        proc.stop()


def _fields(changes: dict[str, Any]) -> dict[str, str]:
    fields = callback_fields(**{k: v for k, v in changes.items() if v is not None})
    return {k: v for k, v in fields.items() if changes.get(k, "") is not None}


def test_every_variant_is_stored_with_its_problems(api_server: ServerProcess) -> None:
    url = api_server.callback_url
    sent: dict[str, dict[str, str]] = {}
    with httpx.Client(timeout=10) as client:
        for name, (changes, _stored, problem_fields) in VARIANTS.items():
            fields = _fields(changes)
            response = client.post(
                url, data=fields, headers={"X-SignalWire-Signature": sw_sign(url, fields)}
            )
            assert response.status_code == 200, (name, response.text)
            answer = response.json()
            assert answer["result"] == "inserted", name
            assert [p["field"] for p in answer.get("problems", [])] == problem_fields, name
            sent[name] = fields
        # The same shapes as JSON, signed with Twilio's validator over the bodySHA256 URL.
        raw = json.dumps({**_fields(VARIANTS["failed, empty MOS"][0]), "AudioInMos": None})
        signed = body_hash_url(url, raw.encode())
        response = client.post(
            signed,
            content=raw,
            headers={"Content-Type": "application/json", "X-Twilio-Signature": twilio_sign(
                signed, {})},
        )  # fmt: skip
        assert response.json() == {"result": "inserted"}
    assert api_server.cli("quarantine", "list", "--json").stdout.strip() == ""

    rows = {row["call_sid"]: row for row in export_rows(api_server)}
    for name, fields in sent.items():
        _changes, stored, problem_fields = VARIANTS[name]
        row = rows[fields["CallSid"]]
        assert {key: row[key] for key in stored} == stored, name
        assert [p["field"] for p in row["problems"]] == problem_fields, name
        for problem in row["problems"]:
            assert problem["value"] == fields.get(problem["field"], ""), name
        api = httpx.get(
            f"{api_server.base_url}/api/v1/calls/{fields['CallSid']}", headers=AUTH, timeout=10
        ).json()
        assert api["problems"] == row["problems"], name
        assert (api["duration_s"], api["mos"], api["status"]) == (
            row["duration_s"],
            row["mos"],
            row["status"],
        ), name

    # Calls dated at their receipt are the ones in the last 24 h (the API's default range).
    with_problems = httpx.get(
        f"{api_server.base_url}/api/v1/calls", params={"problems": "true"}, headers=AUTH
    )
    assert with_problems.status_code == 200, with_problems.text
    listed = {c["call_sid"] for c in with_problems.json()["calls"]}
    assert listed == {
        sent[name]["CallSid"] for name in ("timestamp past 9999 in UTC", "timestamp in 1050")
    }


def _url_only_json(url: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A JSON callback signed as the official SDK accepts on the compatibility surface: the
    compatibility scheme over the URL alone, the body not covered."""
    fields = callback_fields()
    return fields, {
        "content": json.dumps(fields),
        "headers": {"Content-Type": "application/json", "X-Twilio-Signature": twilio_sign(url, {})},
    }


def test_a_signature_over_the_url_alone_is_stored_marked_and_counted(
    api_server: ServerProcess,
) -> None:
    url = api_server.callback_url
    fields, request = _url_only_json(url)
    response = httpx.post(url, **request, timeout=10)
    assert response.status_code == 200, response.text
    (problem,) = response.json()["problems"]
    assert (problem["field"], problem["value"]) == ("signature", "url-only")
    assert "not covered" in problem["why"]
    metrics = httpx.get(f"{api_server.base_url}/metrics", headers=AUTH, timeout=10).text
    assert 'callpulse_data_problems_total{field="signature"} 1.0' in metrics
    rows = {row["call_sid"]: row for row in export_rows(api_server)}
    assert [p["field"] for p in rows[fields["CallSid"]]["problems"]] == ["signature"]


def test_a_lone_surrogate_in_a_signed_extra_field_keeps_every_export_working(
    api_server: ServerProcess, tmp_path: Path
) -> None:
    """Once accepted whole, such a callback broke every later export (jsonl, csv, parquet)."""
    url = api_server.callback_url
    raw = json.dumps({**callback_fields(), "CallerName": "\ud800", "\udfffKey": "x"}).encode()
    signed = body_hash_url(url, raw)
    response = httpx.post(
        signed,
        content=raw,
        headers={"Content-Type": "application/json", "X-SignalWire-Signature": sw_sign(signed, {})},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert {p["field"] for p in response.json()["problems"]} == {"CallerName", "\ufffdKey"}
    for fmt in ("jsonl", "csv"):
        out = api_server.cli("export", "--format", fmt).stdout
        assert "\ufffd" in out, fmt
    parquet = tmp_path / "calls.parquet"
    api_server.cli("export", "--format", "parquet", "--output", str(parquet))
    assert parquet.stat().st_size > 0
