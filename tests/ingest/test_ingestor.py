"""Ingestor: the gate's verdict through a real writer on a temp SQLite file, and its answers."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from urllib.parse import urlencode

import pytest

from callpulse import metrics
from callpulse.ingest.gate import UNCOVERED_WHY, CallbackGate, RawCallback
from callpulse.ingest.pipeline import Answer, Ingestor
from callpulse.ingest.quarantine import raw_from_quarantine
from callpulse.ingest.spool import Spool
from callpulse.ingest.writer import BatchWriter
from callpulse.signature import SigningKeys
from callpulse.store.base import CallWrite, SaveResult, WriteOp
from callpulse.store.errors import StoreRefused
from callpulse.store.sqlite import SQLiteStore
from tests.ingest.raw import FORM, RECEIVED, URL, form, raw
from tests.support import SIGNING_KEY, callback_fields

RECEIVED_MS = RECEIVED.replace(microsecond=123000)  # what the stores keep
GATE = CallbackGate(SigningKeys.parse(SIGNING_KEY), max_body_bytes=4096)


def counted(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def since(before: list[float], now: list[float]) -> list[float]:
    return [b - a for a, b in zip(before, now, strict=True)]


def outcomes(*names: str) -> list[float]:
    return [counted("callpulse_callbacks_total", outcome=name) for name in names]


def calls_counted() -> list[float]:
    return [
        counted("callpulse_calls_total", status=name) for name in ("completed", "failed", "other")
    ]


def problems_counted(*fields: str) -> list[float]:
    return [counted("callpulse_data_problems_total", field=name) for name in fields]


def open_writer(directory: Path, store: SQLiteStore | None = None) -> BatchWriter:
    if store is None:
        store = SQLiteStore(directory / "calls.db", busy_timeout_ms=50)
    store.upgrade()
    writer = BatchWriter(store, Spool(directory / "spool"))
    writer.start()
    return writer


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[BatchWriter]:
    writer = open_writer(tmp_path)
    yield writer
    writer.stop()  # (again, for a test that stopped it to read what it wrote)
    writer.store.close()


def handle(ingestor: Ingestor, request: RawCallback) -> Answer:
    return asyncio.run(asyncio.wait_for(ingestor.handle(request), 10))


def test_a_new_call_is_inserted_a_retry_is_a_duplicate_a_change_an_update(
    writer: BatchWriter,
) -> None:
    ingestor = Ingestor(GATE, writer)
    fields = callback_fields()
    before, calls_before = outcomes("inserted", "duplicate", "updated"), calls_counted()
    sid = fields["CallSid"]  # each answer names its call, for the access log
    assert handle(ingestor, form(fields)) == Answer(200, {"result": "inserted"}, sid)
    assert handle(ingestor, form(fields)) == Answer(200, {"result": "duplicate"}, sid)
    changed = dict(fields, CallStatus="failed", CallDuration="0", AudioInMos="")
    assert handle(ingestor, form(changed)) == Answer(200, {"result": "updated"}, sid)
    assert since(before, outcomes("inserted", "duplicate", "updated")) == [1, 1, 1]
    # one call, counted by the status it arrived with: a retry or a correction is no new call
    assert since(calls_before, calls_counted()) == [1, 0, 0]
    assert handle(ingestor, form(callback_fields(CallStatus="busy"))).body["result"] == "inserted"
    assert since(calls_before, calls_counted()) == [1, 0, 1]
    stored = writer.store.get_call(fields["AccountSid"], fields["CallSid"])
    assert stored is not None and stored.version == 2
    record = stored.record
    assert (record.status, record.mos, stored.received_at) == ("failed", None, RECEIVED_MS)


def test_data_problems_are_answered_and_counted_once_per_stored_version(
    writer: BatchWriter,
) -> None:
    ingestor = Ingestor(GATE, writer)
    fields = callback_fields(AudioInMos="7.2")
    problem = {"field": "AudioInMos", "value": "7.2", "why": "out of range (1-5)"}
    before = problems_counted("AudioInMos", "CallDuration")
    answer = handle(ingestor, form(fields))
    sid = fields["CallSid"]
    assert answer == Answer(200, {"result": "inserted", "problems": [problem]}, sid)
    retry = handle(ingestor, form(fields))  # the sender is told again, nothing counted again
    assert retry == Answer(200, {"result": "duplicate", "problems": [problem]}, sid)
    assert since(before, problems_counted("AudioInMos", "CallDuration")) == [1, 0]
    update = handle(ingestor, form(dict(fields, CallDuration="x")))
    assert update.body["result"] == "updated" and len(update.body["problems"]) == 2
    assert since(before, problems_counted("AudioInMos", "CallDuration")) == [2, 1]


def test_a_body_the_signature_does_not_cover_is_counted_as_a_signature_problem(
    writer: BatchWriter, sdk: ModuleType
) -> None:
    body = urlencode(callback_fields()).encode()
    url_only = sdk._b64_hmac_sha1(SIGNING_KEY, URL)
    request = raw(body, {"content-type": FORM, "x-signalwire-signature": url_only})
    (before,) = problems_counted("signature")
    answer = handle(Ingestor(GATE, writer), request)
    assert answer.body["problems"] == [
        {"field": "signature", "value": "url-only", "why": UNCOVERED_WHY}
    ]
    assert problems_counted("signature") == [before + 1]


@pytest.mark.parametrize(
    ("request_", "status", "reason", "error", "fields"),
    [
        (
            raw(urlencode(callback_fields()).encode(), {"content-type": FORM}),
            403,
            "signature",
            "signature check failed",
            {
                "X-SignalWire-Signature": "missing X-SignalWire-Signature (or X-Twilio-Signature, "
                "X-SignalWire-Sha256-Signature) header"
            },
        ),
        (
            form(callback_fields(CallSid="")),
            400,
            "invalid",
            "invalid callback",
            {"CallSid": "must be 1-64 letters, digits, '-' or '_'"},
        ),
        (
            raw(b"x" * 4097, {"content-type": FORM}),
            413,
            "too_large",
            "request body too large",
            {"body": "4097 bytes is over the 4096-byte limit"},
        ),
        (
            raw(b"<xml/>", {"content-type": "text/xml"}),
            415,
            "unsupported",
            "unsupported media type",
            {
                "Content-Type": "'text/xml' is not accepted; send "
                "application/x-www-form-urlencoded or application/json"
            },
        ),
    ],
    ids=["unsigned", "unkeyed", "too large", "unsupported"],
)
def test_a_rejection_is_answered_with_why_and_kept_in_quarantine(
    writer: BatchWriter,
    request_: RawCallback,
    status: int,
    reason: str,
    error: str,
    fields: dict[str, str],
) -> None:
    (before,) = outcomes(reason)
    answer = handle(Ingestor(GATE, writer), request_)
    assert answer == Answer(status, {"error": error, "reason": reason, "fields": fields})
    assert outcomes(reason) == [before + 1]
    writer.stop()  # everything buffered is stored
    (entry,) = writer.store.list_quarantine()
    assert (entry.reason, entry.errors) == (reason, fields)
    assert (entry.method, entry.url, entry.headers) == ("POST", URL, request_.headers)
    assert (entry.body, entry.body_size, entry.received_at) == (
        request_.body[:4096],
        request_.body_size,
        RECEIVED_MS,
    )
    assert writer.store.count_calls() == 0


def test_quarantine_redacts_credentials_and_cuts_the_body_at_the_gate_limit(
    writer: BatchWriter,
) -> None:
    gate = CallbackGate(SigningKeys.parse(SIGNING_KEY), max_body_bytes=100)
    headers = {
        "content-type": FORM,
        "cookie": "callpulse_session=secret",
        "authorization": "Bearer secret",
        "user-agent": "SignalWire",
    }
    body = b"CallSid=" + b"c" * 292
    assert handle(Ingestor(gate, writer), raw(body, headers)).status == 413
    writer.stop()
    (entry,) = writer.store.list_quarantine()
    assert entry.headers == {
        "content-type": FORM,
        "cookie": "<redacted>",
        "authorization": "<redacted>",
        "user-agent": "SignalWire",
    }
    assert (entry.body, entry.body_size) == (body[:100], 300)


def test_a_quarantined_request_replays_as_it_arrived(writer: BatchWriter) -> None:
    """What ``callpulse quarantine replay`` does: the entry is the request again, checked
    again; with the key it lacked, it is the call."""
    fields = callback_fields()
    request = form(fields, key="PSKrotated")
    assert handle(Ingestor(GATE, writer), request).status == 403
    writer.stop()
    (entry,) = writer.store.list_quarantine()
    replayed = raw_from_quarantine(entry)
    assert replayed == dataclasses.replace(request, received_at=RECEIVED_MS)
    rotated = CallbackGate(SigningKeys.parse(f"{SIGNING_KEY},PSKrotated"), 4096)
    write = rotated.accept(replayed)
    # the call as if signed with the key configured first, received when it first arrived
    assert write == GATE.accept(dataclasses.replace(form(fields), received_at=RECEIVED_MS))


def test_a_call_the_database_refuses_is_answered_500_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "calls.db")
    refused_sid = "refused-call"
    real = store.write_batch

    def write_batch(ops: Sequence[WriteOp]) -> list[SaveResult]:
        # as a driver does for a value it cannot hold
        if any(isinstance(op, CallWrite) and op.record.call_sid == refused_sid for op in ops):
            raise StoreRefused("value out of range")
        return real(ops)

    monkeypatch.setattr(store, "write_batch", write_batch)
    writer = open_writer(tmp_path, store)
    (before,) = outcomes("refused")
    answer = handle(Ingestor(GATE, writer), form(callback_fields(CallSid=refused_sid)))
    writer.stop()
    assert answer == Answer(
        500,
        {
            "result": "refused",
            "error": "the database refused this callback; "
            "it is kept in quarantine (callpulse quarantine list)",
        },
        refused_sid,
    )
    assert outcomes("refused") == [before + 1]
    (entry,) = store.list_quarantine()
    assert entry.reason == "refused" and f"CallSid={refused_sid}".encode() in entry.body


def test_a_call_stored_nowhere_is_answered_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = open_writer(tmp_path)
    (tmp_path / "spool").write_text("a file where the spool directory should be")
    blocker = sqlite3.connect(tmp_path / "calls.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the database is locked: an outage
    fields = callback_fields()
    (before,) = outcomes("unavailable")
    try:
        with caplog.at_level(logging.ERROR, logger="callpulse.ingest.pipeline"):
            answer = handle(Ingestor(GATE, writer), form(fields))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        writer.stop()
    assert answer == Answer(503, {"error": "storage unavailable, retry later"}, fields["CallSid"])
    assert outcomes("unavailable") == [before + 1]
    (message,) = [r.getMessage() for r in caplog.records if r.name == "callpulse.ingest.pipeline"]
    assert message.startswith(f"callback {fields['CallSid']} not stored: database and spool both")


def test_a_spooled_call_is_answered_and_counted_once(tmp_path: Path) -> None:
    writer = open_writer(tmp_path)
    blocker = sqlite3.connect(tmp_path / "calls.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    calls_before = calls_counted()
    fields = callback_fields(CallStatus="failed", CallDuration="7")
    try:
        answer = handle(Ingestor(GATE, writer), form(fields))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        writer.stop()  # the spool drains into the database
    assert answer == Answer(200, {"result": "spooled"}, fields["CallSid"])
    assert writer.store.count_calls() == 1
    assert since(calls_before, calls_counted()) == [0, 1, 0]  # once, not again when drained


def test_every_answer_is_timed(writer: BatchWriter) -> None:
    count, total = (
        "callpulse_callback_latency_seconds_count",
        "callpulse_callback_latency_seconds_sum",
    )
    before_count, before_sum = counted(count), counted(total)
    ingestor = Ingestor(GATE, writer)
    handle(ingestor, form(callback_fields()))
    handle(ingestor, raw(b"", {}))
    assert counted(count) == before_count + 2
    assert 0 < counted(total) - before_sum < 5  # seconds this test took, not a clock reading
