"""The quarantine entries the ingest package makes: a rejection as it arrived, a refused call
from the call itself, and an entry back as the request a replay runs through the gate."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl

from callpulse.callback import parse_callback, to_fields
from callpulse.ingest.gate import Rejected
from callpulse.ingest.quarantine import raw_from_quarantine, refused, rejected
from callpulse.store.base import CallWrite
from callpulse.store.errors import StoreRefused
from callpulse.store.records import QuarantineEntry
from tests.ingest.raw import FORM, RECEIVED, URL, raw
from tests.support import callback_fields

WHY = Rejected(403, "signature", {"X-SignalWire-Signature": "no key matches"}, "signature check")


def test_a_rejected_request_is_kept_as_it_arrived_its_credentials_redacted() -> None:
    headers = {"content-type": FORM, "authorization": "Basic c2VjcmV0", "cookie": "s=1", "x": "y"}
    request = raw(b"CallSid=CA1&junk=" + b"j" * 50, headers, body_size=900)
    entry = rejected(request, WHY, max_body_bytes=20)
    assert entry.reason == "signature" and entry.errors == WHY.errors
    assert (entry.method, entry.url, entry.received_at) == ("POST", URL, RECEIVED)
    assert entry.headers == {
        "content-type": FORM,
        "authorization": "<redacted>",
        "cookie": "<redacted>",
        "x": "y",
    }
    assert entry.body == b"CallSid=CA1&junk=jjj" and entry.body_size == 900  # cut, size kept


def test_a_call_the_database_refuses_is_kept_with_the_databases_words() -> None:
    write = CallWrite(parse_callback(callback_fields(), RECEIVED), RECEIVED)
    entry = refused(write, StoreRefused("integer out of range"))
    assert (entry.reason, entry.errors) == ("refused", {"database": "integer out of range"})
    assert (entry.method, entry.url, entry.headers) == ("POST", "", {"content-type": FORM})
    assert dict(parse_qsl(entry.body.decode())) == to_fields(write.record)
    assert entry.body_size == len(entry.body) and entry.received_at == RECEIVED


def test_the_writers_own_failure_is_told_from_the_databases() -> None:
    write = CallWrite(parse_callback(callback_fields(), RECEIVED), RECEIVED)
    entry = refused(write, RuntimeError("boom"), by_database=False)
    assert (entry.reason, entry.errors) == ("refused", {"writer": "internal error: boom"})


def test_a_value_that_cannot_be_encoded_is_kept_escaped() -> None:
    record = parse_callback(callback_fields(), RECEIVED)
    write = CallWrite(dataclasses.replace(record, to_number="+1555\ud800"), RECEIVED)
    assert b"To=%2B1555%5Cud800" in refused(write, ValueError("surrogates not allowed")).body


def test_an_entry_replays_as_the_request_it_keeps() -> None:
    entry = QuarantineEntry(
        id=7,
        received_at=RECEIVED,
        reason="signature",
        errors={},
        method="GET",
        url=URL + "?CallSid=CA1",
        headers={"x": "y"},
        body=b"abc",
        body_size=10,
    )
    assert raw_from_quarantine(entry) == raw(
        b"abc", {"x": "y"}, method="GET", url=URL + "?CallSid=CA1", body_size=10
    )
