"""End to end: signed callbacks over loopback HTTP to a real `callpulse serve`, on a real SQLite
and a real PostgreSQL.

Signatures are computed with the official SignalWire / Twilio validator classes (or an
independent HMAC here), never with callpulse's own signing code, so a shared misunderstanding of
the scheme cannot make both sides agree.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from signalwire.request_validator import RequestValidator as SignalWireValidator
from twilio.request_validator import RequestValidator as TwilioValidator

from callpulse.callback import KEY_FIELDS
from callpulse.metrics import OUTCOMES
from callpulse.regions import region_of
from callpulse.store.quarantine import DEFAULT_MAX_BODY_BYTES
from callpulse.store.records import QuarantineEntry
from tests.support import (
    ACCOUNT_SID,
    BACKENDS,
    EXAMPLE_PAYLOAD,
    SIGNING_KEY,
    ServerProcess,
    backend_database,
    callback_fields,
    free_port,
    until,
)

CALLBACK_PATH = "/callbacks/call-status"
FORM = "application/x-www-form-urlencoded"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")

# -- helpers --------------------------------------------------------------------------------------


def sw_sign(url: str, params: Mapping[str, str], key: str = SIGNING_KEY) -> str:
    """The compatibility signature as the official SignalWire SDK computes it."""
    return str(SignalWireValidator(key).build_signature_with_compatibility(url, dict(params)))


def twilio_sign(url: str, params: Mapping[str, str], key: str = SIGNING_KEY) -> str:
    return str(TwilioValidator(key).compute_signature(url, dict(params)))


def pairs_sign(url: str, pairs: Sequence[tuple[str, str]], key: str = SIGNING_KEY) -> str:
    """Independent compatibility signature over (possibly repeated) parameters."""
    message = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def native_sign(url: str, body: bytes, key: str = SIGNING_KEY) -> str:
    return hmac.new(key.encode(), url.encode() + body, hashlib.sha1).hexdigest()


def form_post(
    url: str,
    fields: Mapping[str, str],
    *,
    signed_url: str | None = None,
    key: str = SIGNING_KEY,
    header: str = "X-SignalWire-Signature",
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST ``fields`` as a form, signed (SignalWire SDK) over ``signed_url``, else ``url``."""
    all_headers = {header: sw_sign(signed_url or url, fields, key)}
    all_headers.update(headers or {})
    return httpx.post(url, data=dict(fields), headers=all_headers, timeout=10)


def json_body(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(fields)).encode()


def body_hash_url(url: str, body: bytes) -> str:
    return f"{url}?bodySHA256={hashlib.sha256(body).hexdigest()}"


def answer(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    data: dict[str, Any] = response.json()
    return data


def assert_result(response: httpx.Response, result: str, problems: Sequence[str] = ()) -> None:
    """A 200 with this result, naming the fields with data problems (and none else)."""
    assert response.status_code == 200, response.text
    data = answer(response)
    assert [p["field"] for p in data.pop("problems", [])] == list(problems)
    assert data == {"result": result}


def export_rows(server: ServerProcess) -> list[dict[str, Any]]:
    out = server.cli("export", "--format", "jsonl").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def rows_by_sid(server: ServerProcess) -> dict[str, dict[str, Any]]:
    rows = export_rows(server)
    by_sid = {row["call_sid"]: row for row in rows}
    assert len(by_sid) == len(rows), "a call_sid appears more than once in the export"
    return by_sid


def quarantine_list(server: ServerProcess, count: int) -> list[dict[str, Any]]:
    """Every quarantine entry, oldest first, once there are ``count`` of them."""

    def read() -> list[dict[str, Any]]:
        out = server.cli("quarantine", "list", "--json", "--limit", "100000").stdout
        return [json.loads(line) for line in reversed(out.splitlines()) if line.strip()]

    return until(read, lambda entries: len(entries) >= count)


def quarantine_show(server: ServerProcess, entry_id: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(server.cli("quarantine", "show", str(entry_id)).stdout)
    return data


def stored_quarantine(server: ServerProcess, count: int = 0) -> list[QuarantineEntry]:
    """Every quarantine entry in the server's database, oldest first, once there are ``count``."""

    def read() -> list[QuarantineEntry]:
        with server.store() as store:
            return list(reversed(store.list_quarantine(limit=100000)))

    return until(read, lambda entries: len(entries) >= count)


def outcome_counts(server: ServerProcess) -> dict[str, float]:
    """The outcomes counted so far (every outcome is exported, at 0 until it happens)."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    pattern = re.compile(r'^callpulse_callbacks_total\{outcome="([^"]+)"\} (\S+)$', re.MULTILINE)
    counts = {outcome: float(value) for outcome, value in pattern.findall(text)}
    assert set(counts) == set(OUTCOMES)
    return {outcome: count for outcome, count in counts.items() if count}


def metric_value(server: ServerProcess, name: str, token: str | None = None) -> float:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    text = httpx.get(f"{server.base_url}/metrics", headers=headers, timeout=10).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing from /metrics"
    return float(found[1])


def expected_row(fields: Mapping[str, str], **changes: Any) -> dict[str, Any]:
    """The export row (without received_at) a valid form callback should produce."""
    documented = set(EXAMPLE_PAYLOAD)
    row = {
        "call_sid": fields["CallSid"],
        "account_sid": fields["AccountSid"],
        "from": fields["From"],
        "region": region_of(fields["From"]),
        "to": fields["To"],
        "started_at": "2024-04-04T18:32:15Z",
        "status": fields["CallStatus"],
        "duration_s": int(fields["CallDuration"]),
        "mos": float(fields["AudioInMos"]),
        "source": "callback",
        "extra": {k: v for k, v in fields.items() if k not in documented},
        "problems": [],
    }
    row.update(changes)
    return row


def without_received_at(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "received_at"}


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_recent_iso_utc(text: str) -> None:
    assert ISO_UTC.fullmatch(text), text
    moment = parse_iso(text)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=2), text


@pytest.fixture
def start_server(backend: str, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with extra settings / arguments, each in its own directory and database."""
    started: list[ServerProcess] = []
    with contextlib.ExitStack() as databases:

        def start(
            env: Mapping[str, str] | None = None, args: tuple[str, ...] = ()
        ) -> ServerProcess:
            workdir = tmp_path / f"server{len(started)}"
            workdir.mkdir()
            url = databases.enter_context(backend_database(backend, workdir))
            proc = ServerProcess(workdir, env=env, args=args, database_url=url)
            started.append(proc)
            return proc.start()

        yield start
        for proc in started:
            proc.stop()


# -- the document's example -----------------------------------------------------------------------


def test_example_payload_is_accepted_and_exported_exactly(server: ServerProcess) -> None:
    response = form_post(server.callback_url, EXAMPLE_PAYLOAD)
    assert_result(response, "inserted")

    rows = export_rows(server)
    assert len(rows) == 1
    row = rows[0]
    assert_recent_iso_utc(row.pop("received_at"))
    assert row == {
        "call_sid": "b3877c40-da60-4998-90ad-b792e98472ca",
        "account_sid": "b3877c40-da60-4998-90ad-b792e98472af",
        "from": "+15551234567",
        "region": "US",
        "to": "+18005559876",
        "started_at": "2024-04-04T18:32:15Z",
        "status": "completed",
        "duration_s": 142,
        "mos": 4.5,
        "source": "callback",
        "extra": {},
        "problems": [],
    }
    assert list(rows[0]) == list(row)  # nothing but received_at was popped

    csv_lines = server.cli("export", "--format", "csv").stdout.splitlines()
    assert csv_lines[0] == (
        "call_sid,account_sid,from,region,to,started_at,status,duration_s,mos,received_at,source,extra,"
        "problems"
    )
    assert len(csv_lines) == 2
    assert csv_lines[1].startswith(
        "b3877c40-da60-4998-90ad-b792e98472ca,b3877c40-da60-4998-90ad-b792e98472af,"
        "+15551234567,US,+18005559876,2024-04-04T18:32:15Z,completed,142,4.5,"
    )
    assert csv_lines[1].endswith(",callback,{},[]")


# -- exactly once ---------------------------------------------------------------------------------


def test_retries_are_stored_once_sequential_and_concurrent(server: ServerProcess) -> None:
    sequential = callback_fields()
    results = [answer(form_post(server.callback_url, sequential)) for _ in range(5)]
    assert results == [{"result": "inserted"}] + [{"result": "duplicate"}] * 4

    concurrent = callback_fields(CallDuration="61")
    threads = 16
    barrier = threading.Barrier(threads)

    def fire(_: int) -> httpx.Response:
        barrier.wait(timeout=10)
        return form_post(server.callback_url, concurrent)

    with ThreadPoolExecutor(threads) as pool:
        responses = list(pool.map(fire, range(threads)))
    assert [r.status_code for r in responses] == [200] * threads
    outcomes = sorted(answer(r)["result"] for r in responses)
    assert outcomes == ["duplicate"] * (threads - 1) + ["inserted"]

    by_sid = rows_by_sid(server)
    assert set(by_sid) == {sequential["CallSid"], concurrent["CallSid"]}
    assert without_received_at(by_sid[concurrent["CallSid"]]) == expected_row(concurrent)
    with server.store() as store:
        stored = sorted(call.record.call_sid for call in store.iter_calls())
        assert stored == sorted([sequential["CallSid"], concurrent["CallSid"]])  # each once
        assert store.count_calls() == 2
        for f in (sequential, concurrent):
            call = store.get_call(f["AccountSid"], f["CallSid"])
            assert call is not None and call.version == 1  # never updated: no history
            assert store.call_history(f["AccountSid"], f["CallSid"]) == []
    assert outcome_counts(server) == {"inserted": 2.0, "duplicate": 4.0 + threads - 1}


def test_later_callback_updates_and_keeps_history(server: ServerProcess) -> None:
    first = callback_fields(CallStatus="failed", CallDuration="0", AudioInMos="1.0")
    second = dict(first, CallStatus="completed", CallDuration="150", AudioInMos="4.1")
    second["SipResultCode"] = "200"
    sid = first["CallSid"]

    assert_result(form_post(server.callback_url, first), "inserted")
    received_first = rows_by_sid(server)[sid]["received_at"]
    assert_result(form_post(server.callback_url, second), "updated")

    row = rows_by_sid(server)[sid]
    assert without_received_at(row) == expected_row(second)
    assert parse_iso(row["received_at"]) >= parse_iso(received_first)

    def history() -> list[tuple[Any, ...]]:
        with server.store() as store:
            versions = store.call_history(first["AccountSid"], sid)
        return [
            (
                h.version,
                h.record.status,
                h.record.duration_s,
                h.record.mos,
                h.record.extra,
                h.record.from_number,
                h.record.to_number,
            )
            for h in versions
        ]

    def version() -> int | None:
        with server.store() as store:
            call = store.get_call(first["AccountSid"], sid)
        return None if call is None else call.version

    old = [(1, "failed", 0, 1.0, {}, first["From"], first["To"])]
    assert history() == old
    assert version() == 2

    # The sender retries the first version late: acknowledged, nothing changes.
    assert_result(form_post(server.callback_url, first), "duplicate")
    assert_result(form_post(server.callback_url, second), "duplicate")
    assert rows_by_sid(server)[sid] == row
    assert history() == old
    assert version() == 2
    with server.store() as store:
        assert store.count_calls() == 1


# -- rejections -----------------------------------------------------------------------------------


@dataclass
class Rejection:
    name: str
    status: int
    reason: str
    fields: set[str]
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    url: str | None = None  # default: the callback URL
    stream: bool = False  # send chunked, without Content-Length

    def send(self, callback_url: str) -> httpx.Response:
        content: bytes | Iterator[bytes] = self.content
        if self.stream:
            data = self.content
            content = (data[i : i + 8192] for i in range(0, len(data), 8192))
        return httpx.post(
            self.url or callback_url, content=content, headers=self.headers, timeout=10
        )


# Each bad value of a documented field, alone (or two at once), as the fields the error names.
# Only a call that cannot be keyed is refused; every other field becomes a data problem
# (tests/e2e/test_variants.py).
BAD_FIELD_VALUES: list[tuple[dict[str, str], set[str]]] = [
    ({"CallSid": "has space"}, {"CallSid"}),
    ({"CallSid": "x" * 65}, {"CallSid"}),
    ({"AccountSid": "bad/sid"}, {"AccountSid"}),
    ({"AccountSid": ""}, {"AccountSid"}),
]
BAD_JSON_VALUES: list[tuple[dict[str, Any], set[str]]] = [
    ({"CallSid": {"id": "x"}}, {"CallSid"}),
    ({"AccountSid": 42}, {"AccountSid"}),
]


def rejection_cases(url: str) -> list[Rejection]:
    fields = callback_fields()
    form = urlencode(fields).encode()
    form_headers = {"Content-Type": FORM}
    cases = [
        Rejection(
            "missing signature",
            403,
            "signature",
            {"X-SignalWire-Signature"},
            form,
            dict(form_headers),
        ),
        Rejection(
            "garbage signature",
            403,
            "signature",
            {"X-SignalWire-Signature"},
            form,
            {**form_headers, "X-SignalWire-Signature": "bm90IGEgc2lnbmF0dXJl"},
        ),
        Rejection(
            "wrong key",
            403,
            "signature",
            {"X-SignalWire-Signature"},
            form,
            {**form_headers, "X-SignalWire-Signature": sw_sign(url, fields, "PSKsomebody-else")},
        ),
        Rejection(
            "wrong key, Twilio header",
            403,
            "signature",
            {"X-SignalWire-Signature"},
            form,
            {**form_headers, "X-Twilio-Signature": twilio_sign(url, fields, "PSKsomebody-else")},
        ),
        Rejection(
            "tampered field",
            403,
            "signature",
            {"X-SignalWire-Signature"},
            urlencode(dict(fields, CallDuration="9999")).encode(),
            {**form_headers, "X-SignalWire-Signature": sw_sign(url, fields)},
        ),
        Rejection(
            "signed for another URL",
            403,
            "signature",
            {"X-SignalWire-Signature"},
            form,
            {**form_headers, "X-SignalWire-Signature": sw_sign(url + "?other=1", fields)},
        ),
    ]

    body = json_body(callback_fields())
    other_body = json_body(callback_fields())
    hashed_url = body_hash_url(url, other_body)  # the hash of a different body
    cases.append(
        Rejection(
            "bodySHA256 mismatch",
            403,
            "signature",
            {"X-SignalWire-Signature"},
            body,
            {
                "Content-Type": "application/json",
                "X-SignalWire-Signature": twilio_sign(hashed_url, {}),
            },
            url=hashed_url,
        )
    )

    for name in KEY_FIELDS:
        missing = {k: v for k, v in callback_fields().items() if k != name}
        cases.append(
            Rejection(
                f"missing {name}",
                400,
                "invalid",
                {name},
                urlencode(missing).encode(),
                {**form_headers, "X-SignalWire-Signature": sw_sign(url, missing)},
            )
        )
    for overrides, bad in BAD_FIELD_VALUES:
        bad_fields = callback_fields(**overrides)
        cases.append(
            Rejection(
                f"bad {sorted(overrides)}={list(overrides.values())}",
                400,
                "invalid",
                bad,
                urlencode(bad_fields).encode(),
                {**form_headers, "X-SignalWire-Signature": sw_sign(url, bad_fields)},
            )
        )
    for json_overrides, bad in BAD_JSON_VALUES:
        raw = json_body({**callback_fields(), **json_overrides})
        signed = body_hash_url(url, raw)
        cases.append(
            Rejection(
                f"bad JSON {json_overrides}",
                400,
                "invalid",
                bad,
                raw,
                {
                    "Content-Type": "application/json",
                    "X-SignalWire-Signature": twilio_sign(signed, {}),
                },
                url=signed,
            )
        )

    twice = [*callback_fields().items(), ("CallStatus", "failed")]
    cases.append(
        Rejection(
            "field given twice",
            400,
            "invalid",
            {"CallStatus"},
            urlencode(twice).encode(),
            {**form_headers, "X-SignalWire-Signature": pairs_sign(url, twice)},
        )
    )

    latin1 = urlencode(callback_fields()).encode() + b"&CallerName=Zo\xeb"
    cases.append(
        Rejection(
            "form not UTF-8",
            400,
            "invalid",
            {"body"},
            latin1,
            {**form_headers, "X-SignalWire-Signature": sw_sign(url, fields)},
        )
    )

    for label, raw in [
        ("JSON array", b'[{"CallSid": "x"}]'),
        ("JSON string", b'"CallSid"'),
        ("invalid JSON", b'{"CallSid": "x",'),
        ("JSON not UTF-8", b'{"From": "\xff\xfe"}'),
    ]:
        signed = body_hash_url(url, raw)
        cases.append(
            Rejection(
                label,
                400,
                "invalid",
                {"body"},
                raw,
                {
                    "Content-Type": "application/json",
                    "X-SignalWire-Signature": twilio_sign(signed, {}),
                },
                url=signed,
            )
        )

    cases.append(
        Rejection(
            "text/plain",
            415,
            "unsupported",
            {"Content-Type"},
            form,
            {"Content-Type": "text/plain", "X-SignalWire-Signature": sw_sign(url, fields)},
        )
    )

    big = callback_fields(Padding="p" * (70 * 1024))  # a signed, otherwise valid callback
    cases.append(
        Rejection(
            "70 KB form",
            413,
            "too_large",
            {"body"},
            urlencode(big).encode(),
            {**form_headers, "X-SignalWire-Signature": sw_sign(url, big)},
        )
    )
    cases.append(
        Rejection(
            "70 KB chunked JSON",
            413,
            "too_large",
            {"body"},
            json_body(big),
            {"Content-Type": "application/json"},
            stream=True,
        )
    )
    return cases


def test_every_rejection_is_answered_quarantined_and_stores_nothing(server: ServerProcess) -> None:
    cases = rejection_cases(server.callback_url)
    wrong = []
    for case in cases:
        response = case.send(server.callback_url)
        data = answer(response)
        got = (response.status_code, data.get("reason"), set(data.get("fields", {})))
        if got != (case.status, case.reason, case.fields) or not data.get("error"):
            wrong.append(f"{case.name}: {response.status_code} {data}")
        for why in data.get("fields", {}).values():
            assert isinstance(why, str) and why, (case.name, data)
    assert not wrong, "\n".join(wrong)

    entries = quarantine_list(server, len(cases))
    assert len(entries) == len(cases), "one quarantine entry per rejected request"
    for case, entry in zip(cases, entries, strict=True):
        assert entry["reason"] == case.reason, (case.name, entry)
        assert set(entry["errors"]) == case.fields, (case.name, entry)
        assert entry["method"] == "POST"
        if case.stream:  # no Content-Length: the size is known as far as it was read
            assert entry["body_size"] > 65536, (case.name, entry)
        else:
            assert entry["body_size"] == len(case.content), (case.name, entry)
        assert entry["url"] == (case.url or server.callback_url)
        assert_recent_iso_utc(entry["received_at"])

    # The raw request is kept: headers and body, truncated only when too large.
    first = quarantine_show(server, entries[0]["id"])
    assert first["body"] == cases[0].content.decode()
    assert first["truncated"] is False
    assert first["headers"]["content-type"] == FORM
    for case, entry in zip(cases, entries, strict=True):
        if case.status != 413:
            continue
        shown = quarantine_show(server, entry["id"])
        assert shown["truncated"] is True, case.name
        # (kept up to CALLPULSE_QUARANTINE_MAX_BODY_BYTES: a rejected request costs little)
        assert shown["body"] == case.content[:DEFAULT_MAX_BODY_BYTES].decode(), case.name

    assert export_rows(server) == []
    with server.store() as store:
        assert store.count_calls() == 0
    expected: dict[str, float] = {}
    for case in cases:
        expected[case.reason] = expected.get(case.reason, 0.0) + 1
    assert outcome_counts(server) == expected


# -- accepted encodings and signature variants ----------------------------------------------------


def test_encodings_and_signature_schemes(server: ServerProcess) -> None:
    url = server.callback_url
    sent: dict[str, dict[str, Any]] = {}

    def expect_inserted(
        response: httpx.Response, fields: Mapping[str, str], **changes: Any
    ) -> None:
        assert_result(response, "inserted")
        sent[fields["CallSid"]] = expected_row(fields, **changes)

    # Form POST, signed by the official SignalWire SDK.
    f = callback_fields()
    expect_inserted(form_post(url, f), f)

    # Form POST with X-Twilio-Signature, signed by the official Twilio SDK.
    f = callback_fields()
    expect_inserted(httpx.post(url, data=f, headers={"X-Twilio-Signature": twilio_sign(url, f)}), f)

    # JSON with ?bodySHA256: the signature covers the URL alone.
    f = callback_fields()
    raw = json_body(f)
    signed = body_hash_url(url, raw)
    headers = {"Content-Type": "application/json", "X-SignalWire-Signature": sw_sign(signed, {})}
    expect_inserted(httpx.post(signed, content=raw, headers=headers), f)

    # The same with JSON numbers, and charset in the content type.
    f = callback_fields()
    raw = json_body({**f, "CallDuration": 142, "AudioInMos": 4.5})
    signed = body_hash_url(url, raw)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Twilio-Signature": twilio_sign(signed, {}),
    }
    expect_inserted(httpx.post(signed, content=raw, headers=headers), f)

    # JSON without bodySHA256: the fields are signed like form parameters.
    f = callback_fields()
    headers = {"Content-Type": "application/json", "X-SignalWire-Signature": sw_sign(url, f)}
    expect_inserted(httpx.post(url, content=json_body(f), headers=headers), f)

    # The native scheme: hex(HMAC-SHA1(key, url + raw body)).
    f = callback_fields()
    raw = json_body(f)
    headers = {"Content-Type": "application/json", "X-SignalWire-Signature": native_sign(url, raw)}
    expect_inserted(httpx.post(url, content=raw, headers=headers), f)
    assert SignalWireValidator(SIGNING_KEY).validate(url, raw.decode(), native_sign(url, raw))

    # A Twilio-style CallSid.
    f = callback_fields(CallSid="CA" + uuid.uuid4().hex)
    expect_inserted(form_post(url, f), f)

    # GET with the fields as query parameters; the signature covers the full URL.
    f = callback_fields(From="+442071838750")
    get_url = f"{url}?{urlencode(f)}"
    response = httpx.get(get_url, headers={"X-SignalWire-Signature": sw_sign(get_url, {})})
    expect_inserted(response, f)

    # A StatusCallback URL with its own query string: signed as part of the URL.
    f = callback_fields()
    tenant_url = f"{url}?tenant=north&x=%2B1"
    expect_inserted(form_post(tenant_url, f), f)

    # The sender called http://receiver.example/... (port 80 implied) but signed the URL with an
    # explicit :80, and the other way round: both spellings are accepted.
    f = callback_fields()
    response = form_post(
        url,
        f,
        signed_url=f"http://receiver.example:80{CALLBACK_PATH}",
        headers={"Host": "receiver.example"},
    )
    expect_inserted(response, f)
    f = callback_fields()
    response = form_post(
        url,
        f,
        signed_url=f"http://receiver.example{CALLBACK_PATH}",
        headers={"Host": "receiver.example:80"},
    )
    expect_inserted(response, f)

    by_sid = rows_by_sid(server)
    assert set(by_sid) == set(sent)
    for sid, row in by_sid.items():
        assert without_received_at(row) == sent[sid], sid
        assert_recent_iso_utc(row["received_at"])


def test_same_call_sid_in_two_accounts_is_two_calls(server: ServerProcess) -> None:
    f = callback_fields()
    other = dict(f, AccountSid="b3877c40-0000-4998-90ad-0000000000ff")
    assert_result(form_post(server.callback_url, f), "inserted")
    assert_result(form_post(server.callback_url, other), "inserted")
    rows = export_rows(server)
    assert sorted(r["account_sid"] for r in rows) == sorted([ACCOUNT_SID, other["AccountSid"]])


# -- what gets stored -----------------------------------------------------------------------------


def test_withheld_callers_are_stored_as_withheld(server: ServerProcess) -> None:
    sids = {}
    for caller in ["anonymous", "Anonymous", "restricted", "unknown", ""]:
        f = callback_fields(From=caller)
        assert_result(form_post(server.callback_url, f), "inserted")
        sids[f["CallSid"]] = expected_row(f, **{"from": "withheld"})
    by_sid = rows_by_sid(server)
    assert {sid: without_received_at(row) for sid, row in by_sid.items()} == sids


def test_unknown_fields_are_kept_in_extra(server: ServerProcess) -> None:
    f = callback_fields(
        ApiVersion="2010-04-01",
        Direction="inbound",
        CallbackSource="call-progress-events",
        SequenceNumber="0",
        SipResultCode="200",
        CallerName="Zoë Ünïcode",
        Empty="",
    )
    assert_result(form_post(server.callback_url, f), "inserted")

    j = callback_fields()
    raw = json_body({**j, "Nested": {"jitter": [1, 2]}, "Flag": True, "Count": 3})
    signed = body_hash_url(server.callback_url, raw)
    headers = {"Content-Type": "application/json", "X-SignalWire-Signature": sw_sign(signed, {})}
    assert_result(httpx.post(signed, content=raw, headers=headers), "inserted")

    by_sid = rows_by_sid(server)
    assert by_sid[f["CallSid"]]["extra"] == {
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
        "SipResultCode": "200",
        "CallerName": "Zoë Ünïcode",
        "Empty": "",
    }
    assert by_sid[j["CallSid"]]["extra"] == {"Nested": {"jitter": [1, 2]}, "Flag": True, "Count": 3}


def test_nul_characters_in_unknown_fields_are_stored_as_text(server: ServerProcess) -> None:
    """NUL is valid in a form value and in a JSON string, but not text a database column,
    a CSV file or a terminal takes: it is stored as U+FFFD, its raw value kept escaped in a
    data problem, and a callback carrying one does not keep later callbacks out."""
    form = callback_fields(CallerName="Zo\x00ë")
    assert_result(form_post(server.callback_url, form), "inserted", ["CallerName"])

    j = callback_fields()
    raw = json_body({**j, "Note": "a\x00b"})
    assert b"\\u0000" in raw
    signed = body_hash_url(server.callback_url, raw)
    headers = {"Content-Type": "application/json", "X-SignalWire-Signature": sw_sign(signed, {})}
    assert_result(httpx.post(signed, content=raw, headers=headers), "inserted", ["Note"])

    later = callback_fields()
    assert_result(form_post(server.callback_url, later), "inserted")

    by_sid = rows_by_sid(server)
    assert set(by_sid) == {form["CallSid"], j["CallSid"], later["CallSid"]}
    assert by_sid[form["CallSid"]]["extra"] == {"CallerName": "Zo\ufffdë"}
    assert by_sid[j["CallSid"]]["extra"] == {"Note": "a\ufffdb"}
    assert [p["value"] for p in by_sid[j["CallSid"]]["problems"]] == ['"a\\u0000b"']


def test_timestamps_are_stored_in_utc(server: ServerProcess) -> None:
    same_moment = [
        "Thu, 04 Apr 2024 18:32:15 +0000",
        "Thu, 04 Apr 2024 14:32:15 -0400",
        "Thu, 04 Apr 2024 18:32:15 GMT",
        "Thu, 04 Apr 2024 18:32:15 -0000",
        "2024-04-04T18:32:15Z",
        "2024-04-04T20:32:15+02:00",
    ]
    sids = []
    for timestamp in same_moment:
        f = callback_fields(Timestamp=timestamp)
        assert_result(form_post(server.callback_url, f), "inserted")
        sids.append(f["CallSid"])
    by_sid = rows_by_sid(server)
    assert {sid: by_sid[sid]["started_at"] for sid in sids} == dict.fromkeys(
        sids, "2024-04-04T18:32:15Z"
    )


def _json_request(url: str, raw: bytes, *, signed: bool) -> dict[str, Any]:
    if not signed:
        return {"url": url, "content": raw, "headers": {"Content-Type": "application/json"}}
    hashed = body_hash_url(url, raw)
    headers = {"Content-Type": "application/json", "X-SignalWire-Signature": sw_sign(hashed, {})}
    return {"url": hashed, "content": raw, "headers": headers}


def _with(fields: Mapping[str, Any], **changes: Any) -> bytes:
    return json.dumps({**fields, **changes}).encode()


# Unsigned requests that once made the endpoint raise (500, no quarantine entry): each must be
# refused with a 400 naming what is wrong, and be quarantined like any other bad request. (Signed
# ones with extreme field values are stored with data problems: tests/e2e/test_variants.py.)
EXTREME_REQUESTS: dict[str, tuple[Callable[[str], dict[str, Any]], set[str]]] = {
    "unsigned JSON nested 30000 deep": (
        lambda url: _json_request(url, b"[" * 30000 + b"]" * 30000, signed=False),
        {"body"},
    ),
    "unsigned JSON integer of 5000 digits": (
        lambda url: _json_request(url, b'{"CallSid": ' + b"9" * 5000 + b"}", signed=False),
        {"body"},
    ),
}


@pytest.fixture(scope="module", params=BACKENDS)
def refusing_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server per backend for the cases that must all be refused: no call is ever stored on
    it, but each refusal is quarantined in its database."""
    workdir = tmp_path_factory.mktemp(f"refusing-{request.param}")
    with backend_database(request.param, workdir) as url:
        proc = ServerProcess(workdir, database_url=url).start()
        yield proc
        proc.stop()


@pytest.mark.parametrize("case", list(EXTREME_REQUESTS))
def test_extreme_values_are_refused_not_crashing(refusing_server: ServerProcess, case: str) -> None:
    server = refusing_server
    build, bad_fields = EXTREME_REQUESTS[case]
    log_size = server.log_path.stat().st_size
    known = {entry.id for entry in stored_quarantine(server)}

    response = httpx.post(**build(server.callback_url), timeout=10)

    assert response.status_code == 400, f"{response.status_code} {response.text[:200]}"
    data = answer(response)
    assert (data["reason"], set(data["fields"])) == ("invalid", bad_fields)
    new = [
        (entry.reason, set(entry.errors))
        for entry in stored_quarantine(server, len(known) + 1)
        if entry.id not in known
    ]
    assert new == [("invalid", bad_fields)]
    with server.store() as store:
        assert store.count_calls() == 0
    with server.log_path.open("rb") as log:
        log.seek(log_size)
        assert b"Traceback" not in log.read()


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def test_nan_never_reaches_the_export(server: ServerProcess) -> None:
    """NaN / Infinity are not JSON: refuse them, or at least keep the export valid JSON."""
    f = callback_fields()
    raw = json.dumps({**f, "Jitter": float("nan"), "Peak": float("inf")}).encode()
    assert b"NaN" in raw
    response = httpx.post(**_json_request(server.callback_url, raw, signed=True), timeout=10)
    if response.status_code == 400:
        assert set(answer(response)["fields"]) == {"body"}
        return
    assert_result(response, "inserted")
    for line in server.cli("export").stdout.splitlines():
        json.loads(line, parse_constant=_no_constants)


def test_connection_is_usable_after_a_refused_large_body(server: ServerProcess) -> None:
    url = server.callback_url
    big = callback_fields(Padding="p" * (70 * 1024))
    small = callback_fields()
    with httpx.Client(timeout=10) as client:
        for _ in range(2):
            refused = client.post(url, data=big, headers={"X-SignalWire-Signature": "x"})
            assert refused.status_code == 413
            accepted = client.post(
                url, data=small, headers={"X-SignalWire-Signature": sw_sign(url, small)}
            )
            assert accepted.status_code == 200, accepted.text
    assert [r["call_sid"] for r in export_rows(server)] == [small["CallSid"]]


def test_quarantine_is_bounded_and_counts_what_it_dropped(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server({"CALLPULSE_QUARANTINE_MAX_ENTRIES": "3"})
    for n in range(5):
        response = form_post(server.callback_url, callback_fields(CallSid=f"bad {n}"))
        assert response.status_code == 400

    def handled() -> tuple[int, int]:
        with server.store() as store:
            return store.quarantine_counts()

    until(handled, lambda counts: sum(counts) == 5)  # kept or dropped, each of the five
    entries = quarantine_list(server, 3)
    assert len(entries) == 3
    bodies = [entry.body.decode() for entry in stored_quarantine(server)]
    assert [parse_qs(body)["CallSid"] for body in bodies] == [["bad 2"], ["bad 3"], ["bad 4"]]
    with server.store() as store:
        assert store.quarantine_counts() == (3, 2)
    assert metric_value(server, "callpulse_quarantine_entries") == 3.0
    assert metric_value(server, "callpulse_quarantine_dropped") == 2.0
    table = server.cli("quarantine", "list").stdout
    assert "3 kept" in table
    assert "2 dropped" in table


@pytest.mark.slow  # --workers: processes of their own
def test_several_workers_store_each_call_once(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(args=("--workers", "2"))
    calls = [callback_fields() for _ in range(12)]
    copies = 4
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda f: form_post(server.callback_url, f), calls * copies))
    results = sorted(answer(r)["result"] for r in responses)
    assert results == ["duplicate"] * (len(calls) * (copies - 1)) + ["inserted"] * len(calls)
    assert sorted(rows_by_sid(server)) == sorted(f["CallSid"] for f in calls)
    # Any worker's /metrics answers for all of them.
    for _ in range(4):
        counts = outcome_counts(server)
        assert counts == {"inserted": len(calls), "duplicate": len(calls) * (copies - 1)}


# -- health, readiness, metrics -------------------------------------------------------------------


def test_health_readiness_and_metrics(server: ServerProcess) -> None:
    base = server.base_url
    health = httpx.get(f"{base}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"

    url = server.callback_url
    calls = [callback_fields() for _ in range(3)]
    for f in calls:
        assert_result(form_post(url, f), "inserted")
    for f in calls[:2]:
        assert_result(form_post(url, f), "duplicate")
    assert_result(form_post(url, dict(calls[0], CallDuration="7")), "updated")
    for key in ("PSKwrong", "PSKwrong2"):
        assert form_post(url, callback_fields(), key=key).status_code == 403
    assert form_post(url, callback_fields(CallSid="not an id")).status_code == 400
    assert httpx.post(url, content=b"x", headers={"Content-Type": "text/csv"}).status_code == 415
    assert httpx.post(url, content=b"x" * 70_000, headers={"Content-Type": FORM}).status_code == 413

    metrics = httpx.get(f"{base}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert outcome_counts(server) == {
        "inserted": 3.0,
        "duplicate": 2.0,
        "updated": 1.0,
        "signature": 2.0,
        "invalid": 1.0,
        "unsupported": 1.0,
        "too_large": 1.0,
    }
    assert metric_value(server, "callpulse_callback_latency_seconds_count") == 11.0
    assert metric_value(server, "callpulse_quarantine_entries") == 5.0
    assert metric_value(server, "callpulse_spool_depth") == 0.0
    assert metric_value(server, "callpulse_database_up") == 1.0


# -- start-up -------------------------------------------------------------------------------------


def _env_without_keys(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLPULSE_")}
    env["CALLPULSE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'refused.db'}"
    env["CALLPULSE_SPOOL_DIR"] = str(tmp_path / "spool")
    env.update(extra)
    return env


@pytest.mark.parametrize("keys", [None, "", " , "])
def test_serve_refuses_to_start_without_keys(tmp_path: Path, keys: str | None) -> None:
    env = _env_without_keys(tmp_path)
    if keys is not None:
        env["CALLPULSE_SIGNING_KEYS"] = keys
    try:
        result = subprocess.run(
            [sys.executable, "-m", "callpulse", "serve", "--port", str(free_port())],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("serve started without any signing key")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "CALLPULSE_SIGNING_KEYS" in lines[0]
    assert "--allow-unsigned" in lines[0]


def test_allow_unsigned_accepts_unsigned_callbacks(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server({"CALLPULSE_SIGNING_KEYS": ""}, ("--allow-unsigned",))
    assert "warning" in server.log_path.read_text().lower()
    f = callback_fields()
    assert_result(httpx.post(server.callback_url, data=f), "inserted")
    assert_result(httpx.post(server.callback_url, data=f), "duplicate")
    g = callback_fields()
    assert_result(httpx.get(f"{server.callback_url}?{urlencode(g)}"), "inserted")
    # A call that cannot be keyed is still refused.
    bad = httpx.post(server.callback_url, data=callback_fields(CallSid="nobody here"))
    assert bad.status_code == 400
    assert set(answer(bad)["fields"]) == {"CallSid"}
    assert sorted(rows_by_sid(server)) == sorted([f["CallSid"], g["CallSid"]])


def test_metrics_carry_the_last_hours_kpis(
    start_server: Callable[..., ServerProcess],
) -> None:
    """The business figures, for a scraper with the API token (the operational metrics are
    served to anyone: tests/web/test_metrics_access.py)."""
    token = "metrics-scrape-token-0123456789"
    server = start_server({"CALLPULSE_API_TOKEN": token})
    just_now = email.utils.format_datetime(datetime.now(UTC) - timedelta(minutes=5))
    sent = [
        callback_fields(Timestamp=just_now, AudioInMos="4.2", CallDuration="60"),
        callback_fields(Timestamp=just_now, AudioInMos="3.0", CallDuration="120"),
        callback_fields(Timestamp=just_now, CallStatus="failed", CallDuration="0"),
        callback_fields(),  # started in 2024: not in the last hour
    ]
    for fields in sent:
        assert server.post(fields).status_code == 200
    kpi = {
        name: metric_value(server, f'callpulse_last_hour{{kpi="{name}"}}', token)
        for name in ("calls", "failed", "success_rate", "mos_mean", "poor_call_rate", "acd_seconds")
    }
    assert kpi == pytest.approx(
        {
            "calls": 3,
            "failed": 1,
            "success_rate": 2 / 3,
            "mos_mean": 3.6,
            "poor_call_rate": 0.5,
            "acd_seconds": 90,
        }
    )
