from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpulse.callback import (
    KEY_FIELDS,
    UNKNOWN_STATUS,
    WITHHELD,
    CallbackError,
    CallRecord,
    Problem,
    decode_form,
    decode_json,
    fields_from_pairs,
    parse_callback,
    to_fields,
)
from tests.support import EXAMPLE_PAYLOAD

RECEIVED = datetime(2024, 4, 4, 18, 40, 0, 123456, tzinfo=UTC)
RECEIVED_MS = RECEIVED.replace(microsecond=123000)


def parse(**overrides: Any) -> CallRecord:
    fields = {**EXAMPLE_PAYLOAD, **overrides}
    return parse_callback({k: v for k, v in fields.items() if v is not _ABSENT}, RECEIVED)


_ABSENT: Any = object()


def problems(record: CallRecord) -> dict[str, str]:
    return {p.field: p.why for p in record.problems}


# Far from UTC on both sides, one of them not a whole number of hours.
OTHER_ZONES = ("America/Los_Angeles", "Asia/Kolkata")


@pytest.fixture(params=("UTC", *OTHER_ZONES))
def local_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test runs with the machine's local time zone set to each of these in turn: what is
    parsed and stored must not depend on it."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    try:
        if request.param != "UTC" and time.timezone == 0:
            pytest.skip(f"no time zone database for {request.param}")
        yield request.param
    finally:
        monkeypatch.undo()
        time.tzset()


def test_document_example_parses_to_exact_values() -> None:
    record = parse()
    assert record.call_sid == "b3877c40-da60-4998-90ad-b792e98472ca"
    assert record.account_sid == "b3877c40-da60-4998-90ad-b792e98472af"
    assert record.from_number == "+15551234567"
    assert record.to_number == "+18005559876"
    assert record.started_at == datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)
    assert record.status == "completed"
    assert record.duration_s == 142
    assert record.mos == 4.5
    assert record.extra == {}
    assert record.problems == ()


def test_keys_are_ids_of_up_to_64_characters() -> None:
    record = parse(CallSid="C" + "a_-9" * 15 + "xyz", AccountSid="A")
    assert (record.call_sid, record.account_sid) == ("C" + "a_-9" * 15 + "xyz", "A")


def test_only_a_call_that_cannot_be_keyed_is_refused() -> None:
    with pytest.raises(CallbackError) as info:
        parse_callback({}, RECEIVED)
    assert info.value.errors == {name: "required field is missing" for name in KEY_FIELDS}
    assert str(info.value) == (
        "CallSid: required field is missing; AccountSid: required field is missing"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("CallSid", ""), ("CallSid", "a b"), ("AccountSid", "x" * 65), ("AccountSid", 12),
     ("CallSid", "-leading-dash"), ("CallSid", "_leading"), ("CallSid", None),
     ("CallSid", "CA1\n")],
)  # fmt: skip
def test_key_that_is_not_an_id_is_named_with_the_fix(field: str, value: Any) -> None:
    with pytest.raises(CallbackError) as info:
        parse(**{field: value})
    assert info.value.errors == {field: "must be 1-64 letters, digits, '-' or '_'"}


# field, raw value, other overrides, expected stored value, expected problem (None: no problem)
VARIANTS: list[tuple[str, Any, dict[str, Any], Any, str | None]] = [
    # AudioInMos
    ("AudioInMos", "", {"CallStatus": "failed"}, None, None),
    ("AudioInMos", _ABSENT, {"CallStatus": "failed"}, None, None),
    ("AudioInMos", "0", {"CallStatus": "failed"}, None, None),
    ("AudioInMos", 0, {"CallStatus": "failed"}, None, None),
    ("AudioInMos", "", {}, None, "missing"),
    ("AudioInMos", _ABSENT, {}, None, "missing"),
    ("AudioInMos", "0", {}, None, "0 means no score"),
    ("AudioInMos", "7.2", {}, None, "out of range (1-5)"),
    ("AudioInMos", "7.2", {"CallStatus": "failed"}, None, "out of range (1-5)"),
    ("AudioInMos", "0.99", {}, None, "out of range (1-5)"),
    ("AudioInMos", "5.01", {}, None, "out of range (1-5)"),
    ("AudioInMos", "nan", {}, None, "out of range (1-5)"),
    ("AudioInMos", "good", {}, None, "not a number such as '4.5'"),
    ("AudioInMos", True, {}, None, "not a number such as '4.5'"),
    ("AudioInMos", [4.5], {}, None, "not a number such as '4.5'"),
    ("AudioInMos", 10**400, {}, None, "not a number such as '4.5'"),
    ("AudioInMos", None, {}, None, "missing"),  # JSON null
    ("AudioInMos", None, {"CallStatus": "failed"}, None, None),
    ("AudioInMos", {"score": 4.5}, {}, None, "not a number such as '4.5'"),
    ("AudioInMos", "4,5", {}, None, "not a number such as '4.5'"),
    ("AudioInMos", 0.0, {}, None, "0 means no score"),
    ("AudioInMos", 0.999, {}, None, "out of range (1-5)"),
    ("AudioInMos", "1", {}, 1.0, None),
    ("AudioInMos", "1.0", {}, 1.0, None),
    ("AudioInMos", "5", {}, 5.0, None),
    ("AudioInMos", "5.0", {}, 5.0, None),
    ("AudioInMos", 4, {}, 4.0, None),
    ("AudioInMos", 4.25, {}, 4.25, None),
    # CallDuration
    ("CallDuration", _ABSENT, {"CallStatus": "failed"}, None, None),
    ("CallDuration", "", {"CallStatus": "failed"}, None, None),
    ("CallDuration", "0", {"CallStatus": "failed"}, 0, None),
    ("CallDuration", _ABSENT, {}, None, "missing"),
    ("CallDuration", "", {}, None, "missing"),
    ("CallDuration", "0", {}, 0, None),
    ("CallDuration", "142.0", {}, 142, None),
    ("CallDuration", "141.6", {}, 142, None),
    ("CallDuration", "141.5", {}, 142, None),
    ("CallDuration", "142.4", {}, 142, None),
    ("CallDuration", 142, {}, 142, None),
    ("CallDuration", 141.6, {}, 142, None),
    ("CallDuration", "604800", {}, 604800, None),
    ("CallDuration", "604801", {}, None, "out of range (0-604800 seconds)"),
    ("CallDuration", -1, {}, None, "out of range (0-604800 seconds)"),
    ("CallDuration", "-1", {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", "1e3", {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", "two", {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", True, {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", {}, {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", None, {}, None, "missing"),  # JSON null
    ("CallDuration", None, {"CallStatus": "busy"}, None, None),
    ("CallDuration", 0, {}, 0, None),
    ("CallDuration", 604800, {}, 604800, None),
    ("CallDuration", 604800.4, {}, None, "out of range (0-604800 seconds)"),
    ("CallDuration", 0.4, {}, 0, None),
    ("CallDuration", 0.5, {}, 1, None),
    ("CallDuration", "0.", {}, 0, None),
    ("CallDuration", ".5", {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", "1234567890", {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", "999999999", {}, None, "out of range (0-604800 seconds)"),
    ("CallDuration", "1.123456", {}, 1, None),
    ("CallDuration", "1.1234567", {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", " 142", {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", float("nan"), {}, None, "not a number of seconds such as '142'"),
    ("CallDuration", float("inf"), {}, None, "out of range (0-604800 seconds)"),
    ("CallDuration", [142], {}, None, "not a number of seconds such as '142'"),
    # From / To
    ("From", "sip:alice@example.com", {}, "sip:alice@example.com", None),
    ("From", "sips:bob@example.com:5061", {}, "sips:bob@example.com:5061", None),
    ("From", "client:tommy", {}, "client:tommy", None),
    ("From", "anonymous", {}, WITHHELD, None),
    ("From", "Restricted", {}, WITHHELD, None),
    ("From", "", {}, WITHHELD, None),
    ("From", _ABSENT, {}, WITHHELD, "From is missing"),
    ("From", "15551234567", {}, "15551234567",
     "not an E.164 number, SIP URI or client identifier"),
    ("From", " 15551234567", {}, " 15551234567",
     "not an E.164 number, SIP URI or client identifier (a '+' sent unencoded in a form body "
     "arrives as a space)"),
    ("From", 15551234567, {}, "15551234567", "not text"),
    ("From", None, {}, WITHHELD, "From is missing"),  # JSON null
    ("From", ["Zoë"], {}, '["Zoë"]', "not text"),  # the raw JSON as sent, not escaped
    ("From", "  Anonymous ", {}, WITHHELD, None),
    ("From", "+15551234567 ", {}, "+15551234567 ",
     "not an E.164 number, SIP URI or client identifier"),
    ("From", "CLIENT:Tommy", {}, "CLIENT:Tommy", None),
    ("From", "+05551234567", {}, "+05551234567",
     "not an E.164 number, SIP URI or client identifier"),
    ("To", "sip:support@pbx.example.com", {}, "sip:support@pbx.example.com", None),
    ("To", "+999123", {}, "+999123", None),
    ("To", "+12", {}, "+12", None),  # E.164: 2 to 15 digits
    ("To", "+123456789012345", {}, "+123456789012345", None),
    ("To", "+1", {}, "+1", "not an E.164 number, SIP URI or client identifier"),
    ("To", "+1234567890123456", {}, "+1234567890123456",
     "not an E.164 number, SIP URI or client identifier"),
    ("To", "anonymous", {}, "anonymous", "not an E.164 number, SIP URI or client identifier"),
    ("To", "", {}, "", "empty"),
    ("To", _ABSENT, {}, "", "missing"),
    ("To", None, {}, "", "missing"),
    ("To", "   ", {}, "", "empty"),
    ("To", 18005559876, {}, "18005559876", "not text"),
    ("To", {"n": "é"}, {}, '{"n": "é"}', "not text"),
    # CallStatus
    ("CallStatus", "completed", {}, "completed", None),
    ("CallStatus", "COMPLETED", {}, "completed", None),
    ("CallStatus", "failed", {}, "failed", None),
    ("CallStatus", "busy", {}, "busy", None),
    ("CallStatus", "done", {}, "done", "not a known call status"),
    ("CallStatus", _ABSENT, {}, UNKNOWN_STATUS, "missing: stored as unknown"),
    ("CallStatus", "", {}, UNKNOWN_STATUS, "missing: stored as unknown"),
    ("CallStatus", {}, {}, UNKNOWN_STATUS, "not a call status: stored as unknown"),
    ("CallStatus", [], {}, UNKNOWN_STATUS, "not a call status: stored as unknown"),
    ("CallStatus", "a" * 40, {}, UNKNOWN_STATUS, "not a call status: stored as unknown"),
    ("CallStatus", "a" * 32, {}, "a" * 32, "not a known call status"),
    ("CallStatus", "a" * 33, {}, UNKNOWN_STATUS, "not a call status: stored as unknown"),
    ("CallStatus", "no_answer", {}, "no_answer", "not a known call status"),
    ("CallStatus", "-busy", {}, UNKNOWN_STATUS, "not a call status: stored as unknown"),
    ("CallStatus", None, {}, UNKNOWN_STATUS, "missing: stored as unknown"),
    ("CallStatus", 3, {}, UNKNOWN_STATUS, "not a call status: stored as unknown"),
    ("CallStatus", " Busy ", {}, "busy", None),
]  # fmt: skip


@pytest.mark.parametrize(("field", "raw", "others", "stored", "why"), VARIANTS)
def test_every_variant_is_stored_with_its_problem(
    field: str, raw: Any, others: dict[str, Any], stored: Any, why: str | None
) -> None:
    record = parse(**others, **{field: raw})
    attribute = {
        "AudioInMos": "mos",
        "CallDuration": "duration_s",
        "From": "from_number",
        "To": "to_number",
        "CallStatus": "status",
    }[field]
    value = getattr(record, attribute)
    assert value == stored and type(value) is type(stored)
    assert problems(record) == ({} if why is None else {field: why})
    if why is not None:
        problem = record.problem(field)
        assert problem is not None
        if raw is _ABSENT or raw is None:
            expected_raw = ""
        else:
            expected_raw = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        assert problem.value == expected_raw
        assert problem.as_dict() == {"field": field, "value": expected_raw, "why": why}
    else:
        assert record.problem(field) is None


@pytest.mark.parametrize(
    "status",
    ["completed", "failed", "queued", "initiated", "ringing", "in-progress", "answered", "busy",
     "no-answer", "canceled"],
)  # fmt: skip
def test_every_documented_call_status_is_known(status: str) -> None:
    record = parse(CallStatus=status, CallDuration=_ABSENT, AudioInMos=_ABSENT)
    assert record.status == status
    # Only a completed call must carry a duration and a score.
    expected = {"CallDuration": "missing", "AudioInMos": "missing"} if status == "completed" else {}
    assert problems(record) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thu, 04 Apr 2024 18:32:15 +0000", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thu, 04 Apr 2024 20:32:15 +0200", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thu, 04 Apr 2024 18:32:15 -0000", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thu, 04 Apr 2024 18:32:15 GMT", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thu, 04 Apr 2024 18:32:15 UT", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thu, 4 Apr 2024 18:32:15 +0000", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("04 Apr 2024 18:32:15 +0000", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thur, 20 Sept 2018 18:00:00 +0000", datetime(2018, 9, 20, 18, 0, 0, tzinfo=UTC)),
        ("2024-04-04T18:32:15Z", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("2024-04-04T13:32:15.250-05:00", datetime(2024, 4, 4, 18, 32, 15, 250000, tzinfo=UTC)),
        ("2024-04-04T18:32:15.2509", datetime(2024, 4, 4, 18, 32, 15, 250000, tzinfo=UTC)),
        ("1712255535", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("1712255535.5", datetime(2024, 4, 4, 18, 32, 15, 500000, tzinfo=UTC)),
        (1712255535, datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Mon, 01 Jan 1970 00:00:00 +0000", datetime(1970, 1, 1, tzinfo=UTC)),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2099-12-31T23:59:59.999Z", datetime(2099, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        ("1712255535.123456", datetime(2024, 4, 4, 18, 32, 15, 123000, tzinfo=UTC)),
        (" 1712255535 ", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        (1712255535.5, datetime(2024, 4, 4, 18, 32, 15, 500000, tzinfo=UTC)),
        ("Thursday, 04 April 2024 18:32:15 +0000", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thu., 04 Apr. 2024 18:32:15 +0000", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thu, 04 Apr 2024 18:32:15", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
    ],
)
def test_timestamp_variants_are_stored_in_utc(
    text: Any, expected: datetime, local_zone: str
) -> None:
    record = parse(Timestamp=text)
    assert record.started_at == expected
    assert record.started_at.tzinfo is UTC
    assert record.problems == ()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("yesterday", "unparseable"),
        ("", "missing"),
        (_ABSENT, "missing"),
        (True, "not a time"),
        ({}, "unparseable"),
        ("9999-12-31T23:59:59-01:00", "out of range"),
        ("1099-05-01T00:00:00Z", "out of range (1970-2099)"),
        ("1969-12-31T23:59:59Z", "out of range (1970-2099)"),
        ("2100-01-01T00:00:00Z", "out of range (1970-2099)"),
        ("Thu, 04 Apr 99999 18:32:15 +0000", "unparseable"),
        ("Thu, 04 Apr 2024 18:32:15 +9999", "unparseable"),
        ("99999999999", "out of range (1970-2099)"),
        (10**30, "unparseable"),
        ("1712255535.1234567", "unparseable"),
        ("1712255535123", "unparseable"),
        (float("nan"), "unparseable"),
    ],
)
def test_an_unusable_timestamp_takes_the_time_of_receipt_marked(
    text: Any, why: str, local_zone: str
) -> None:
    record = parse(Timestamp=text) if text is not _ABSENT else parse(Timestamp=_ABSENT)
    assert record.started_at == RECEIVED_MS
    assert record.started_at.tzinfo is UTC
    assert list(problems(record)) == ["Timestamp"]
    assert problems(record)["Timestamp"].startswith(why)
    assert problems(record)["Timestamp"].endswith("the time of receipt is used")


UNPARSEABLE = (
    "unparseable: expected RFC 2822 ('Thu, 04 Apr 2024 18:32:15 +0000'), ISO 8601 or Unix "
    "seconds; the time of receipt is used"
)


def test_timestamp_problems_are_named_exactly() -> None:
    assert problems(parse(Timestamp="yesterday")) == {"Timestamp": UNPARSEABLE}
    assert problems(parse(Timestamp="9999-12-31T23:59:59-01:00")) == {
        "Timestamp": "out of range; the time of receipt is used"
    }
    assert problems(parse(Timestamp="2100-01-01T00:00:00Z")) == {
        "Timestamp": "out of range (1970-2099); the time of receipt is used"
    }
    assert problems(parse(Timestamp=_ABSENT)) == {
        "Timestamp": "missing; the time of receipt is used"
    }
    assert parse(Timestamp="yesterday").problem("Timestamp") == Problem(
        "Timestamp", "yesterday", UNPARSEABLE
    )


def test_the_time_of_receipt_is_kept_to_the_millisecond_in_utc(local_zone: str) -> None:
    fields = {**EXAMPLE_PAYLOAD, "Timestamp": ""}
    for micro, kept in ((0, 0), (999, 0), (1_000, 1_000), (999_000, 999_000), (999_999, 999_000)):
        received = datetime(2024, 4, 4, 18, 40, 0, micro, tzinfo=UTC)
        record = parse_callback(fields, received)
        assert record.started_at == received.replace(microsecond=kept)
        assert record.started_at.tzinfo is UTC
    # A time of receipt in another zone is the same instant, stored in UTC.
    local = datetime(2024, 4, 4, 11, 40, tzinfo=datetime(2024, 4, 4).astimezone().tzinfo)
    assert parse_callback(fields, local).started_at == local
    assert parse_callback(fields, local).started_at.tzinfo is UTC
    # Without one, now.
    before = datetime.now(UTC).replace(microsecond=0)
    record = parse_callback(fields)
    assert before <= record.started_at <= datetime.now(UTC)
    assert record.started_at.tzinfo is UTC


def test_timestamp_milliseconds_are_truncated() -> None:
    assert parse(Timestamp="2024-04-04T18:32:15.999999Z").started_at == datetime(
        2024, 4, 4, 18, 32, 15, 999000, tzinfo=UTC
    )
    assert parse(Timestamp="1712255535.001").started_at == datetime(
        2024, 4, 4, 18, 32, 15, 1000, tzinfo=UTC
    )


def test_several_problems_are_all_reported() -> None:
    record = parse(From="x", AudioInMos="9", CallDuration="-2")
    assert problems(record) == {
        "AudioInMos": "out of range (1-5)",
        "CallDuration": "not a number of seconds such as '142'",
        "From": "not an E.164 number, SIP URI or client identifier",
    }
    assert [p.field for p in record.problems] == ["AudioInMos", "CallDuration", "From"]
    assert record.problem("To") is None


def test_unknown_fields_are_kept() -> None:
    record = parse(Direction="inbound", SipResultCode="200")
    assert record.extra == {"Direction": "inbound", "SipResultCode": "200"}


INVALID_TEXT = "invalid text (lone surrogate or control character) replaced by U+FFFD"


@pytest.mark.parametrize(
    ("fields", "cleaned_field", "stored", "raw"),
    [
        ({"Note": "\ud800"}, "Note", "\ufffd", '"\\ud800"'),
        ({"Note": "a\x00b"}, "Note", "a\ufffdb", '"a\\u0000b"'),
        ({"Note": "é\x7f"}, "Note", "é\ufffd", '"\\u00e9\\u007f"'),
        ({"Note": {"deep": ["\udfff"]}}, "Note", {"deep": ["\ufffd"]}, '{"deep": ["\\udfff"]}'),
        ({"Note": {"\x01": "x"}}, "Note", {"\ufffd": "x"}, '{"\\u0001": "x"}'),
        ({"Note": [1, "\x02"]}, "Note", [1, "\ufffd"], '[1, "\\u0002"]'),
        ({"No\x00te": "x"}, "No\ufffdte", "x", '"x"'),
        ({"To": "+1800\x1b[2J"}, "To", "+1800\ufffd[2J", '"+1800\\u001b[2J"'),
    ],
)
def test_invalid_text_is_replaced_once_and_noted(
    fields: dict[str, Any], cleaned_field: str, stored: Any, raw: str
) -> None:
    record = parse(**fields)
    value = record.to_number if cleaned_field == "To" else record.extra[cleaned_field]
    assert value == stored
    # The raw value, escaped (ASCII), so it can be stored and exported.
    noted = Problem(cleaned_field, raw, INVALID_TEXT)
    assert record.problem(cleaned_field) == noted
    # A cleaned value is then parsed as any other: this To is still not a number.
    also = () if cleaned_field != "To" else (Problem("To", stored, "not an E.164 number, SIP URI "
                                                     "or client identifier"),)  # fmt: skip
    assert record.problems == (noted, *also)
    json.dumps(record.extra, ensure_ascii=False).encode("utf-8")  # exportable


def test_clean_nested_text_is_not_a_problem() -> None:
    record = parse(Note={"deep": ["ok", 1, None], "k": {"x": "é"}}, Empty={}, List=[])
    assert record.problems == ()
    assert record.extra == {"Note": {"deep": ["ok", 1, None], "k": {"x": "é"}}, "Empty": {},
                            "List": []}  # fmt: skip


def test_text_with_tabs_and_newlines_is_kept_as_sent() -> None:
    assert parse(Note="a\tb\nc\r").extra == {"Note": "a\tb\nc\r"}


def test_form_decoding() -> None:
    pairs = decode_form(b"CallSid=abc&From=%2B15551234567&Empty=&&a=1")
    assert pairs == [("CallSid", "abc"), ("From", "+15551234567"), ("Empty", ""), ("a", "1")]
    assert decode_form(b"a=1&&b=2&") == [("a", "1"), ("b", "2")]
    assert decode_form(b"From=+15551234567") == [("From", " 15551234567")]  # a raw '+'
    assert decode_form(b"To=a+b%20c") == [("To", "a b c")]
    assert decode_form(b"k%3Dx=v%26w") == [("k=x", "v&w")]
    assert decode_form(b"a=1=2&b") == [("a", "1=2"), ("b", "")]  # the first '=' splits
    assert decode_form(b"Note=%E2%82%AC&Raw=\xe2\x82\xac") == [("Note", "€"), ("Raw", "€")]
    assert decode_form(b"") == []
    with pytest.raises(CallbackError) as info:
        decode_form(b"From=\xff\xfe")
    assert info.value.errors == {"body": "form body is not valid UTF-8"}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"[1, 2]", "JSON body must be an object of callback fields"),
        (b'"CallSid"', "JSON body must be an object of callback fields"),
        (b"{nope", "invalid JSON (Expecting property name enclosed in double quotes: line 1 "
                   "column 2 (char 1))"),
        (b'{"a": NaN}', "invalid JSON (NaN is not a JSON value)"),
        (b'{"a": -Infinity}', "invalid JSON (-Infinity is not a JSON value)"),
        (b'{"a": "\xff"}', "invalid JSON ('utf-8' codec can't decode byte 0xff in position 7: "
                           "invalid start byte)"),
    ],
)  # fmt: skip
def test_json_that_is_not_an_object_of_fields_is_refused(body: bytes, why: str) -> None:
    with pytest.raises(CallbackError) as info:
        decode_json(body)
    assert info.value.errors == {"body": why}
    assert str(info.value) == f"body: {why}"


def test_json_decoding() -> None:
    assert decode_json(b'{"CallSid": "abc", "CallDuration": 142, "n": {"x": null}}') == {
        "CallSid": "abc",
        "CallDuration": 142,
        "n": {"x": None},
    }
    with pytest.raises(CallbackError) as info:
        decode_json(b"[" * 100_000)
    assert list(info.value.errors) == ["body"]
    assert info.value.errors["body"].startswith("invalid JSON (")


def test_repeated_documented_field_is_rejected_in_every_encoding() -> None:
    with pytest.raises(CallbackError) as info:
        fields_from_pairs([("CallSid", "a"), ("CallSid", "b")])
    assert info.value.errors == {"CallSid": "given more than once"}
    with pytest.raises(CallbackError) as info:
        decode_json(b'{"AudioInMos": "4.5", "AudioInMos": "1.0"}')
    assert info.value.errors == {"AudioInMos": "given more than once"}
    assert fields_from_pairs([("Other", "a"), ("Other", "b")]) == {"Other": "b"}


def test_to_fields_round_trips(local_zone: str) -> None:
    record = parse(Direction="inbound")
    assert parse_callback(to_fields(record), RECEIVED) == record
    assert to_fields(parse()) == EXAMPLE_PAYLOAD
    failed = parse(CallStatus="failed", CallDuration=_ABSENT, AudioInMos="")
    assert (failed.duration_s, failed.mos, failed.problems) == (None, None, ())
    assert parse_callback(to_fields(failed), RECEIVED) == failed
    assert to_fields(failed)["CallDuration"] == to_fields(failed)["AudioInMos"] == ""
    withheld = parse(From="restricted", Count=3)
    assert to_fields(withheld)["From"] == "anonymous"
    assert to_fields(withheld)["Count"] == "3"
    assert parse_callback(to_fields(withheld), RECEIVED).from_number == WITHHELD
    assert to_fields(parse(AudioInMos="4.25"))["AudioInMos"] == "4.25"
    assert to_fields(parse(Timestamp="2024-04-04T20:32:15+02:00"))["Timestamp"] == (
        "Thu, 04 Apr 2024 18:32:15 +0000"
    )


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.lists(st.text(), max_size=3),
    st.dictionaries(st.text(), st.text(), max_size=3),
)


@settings(deadline=None)  # a busy machine must not fail a test over its timing
@given(st.dictionaries(st.sampled_from([*EXAMPLE_PAYLOAD, "Extra", "\ud800"]), _values))
def test_any_fields_give_a_record_or_a_callback_error(fields: dict[str, Any]) -> None:
    try:
        record = parse_callback(fields, RECEIVED)
    except CallbackError as exc:
        assert set(exc.errors) <= set(KEY_FIELDS)
        return
    # What is stored is always text that can be encoded, and times stay in range.
    json.dumps(
        [record.from_number, record.to_number, record.status, record.extra,
         [p.as_dict() for p in record.problems]], ensure_ascii=False,
    ).encode("utf-8")  # fmt: skip
    assert datetime(1970, 1, 1, tzinfo=UTC) <= record.started_at < datetime(2100, 1, 1, tzinfo=UTC)
    assert record.mos is None or 1 <= record.mos <= 5
    assert record.duration_s is None or 0 <= record.duration_s <= 7 * 24 * 3600


TIME_ZONE_SENSITIVE = [
    "tests/test_callback.py::test_timestamp_variants_are_stored_in_utc",
    "tests/test_callback.py::test_an_unusable_timestamp_takes_the_time_of_receipt_marked",
    "tests/test_callback.py::test_the_time_of_receipt_is_kept_to_the_millisecond_in_utc",
    "tests/test_callback.py::test_to_fields_round_trips",
    "tests/test_export.py",
]


@pytest.mark.parametrize("zone", OTHER_ZONES)
def test_time_handling_passes_in_a_process_started_in_another_zone(zone: str) -> None:
    """``local_zone`` changes the zone after import; this catches what is fixed at import."""
    root = Path(__file__).resolve().parents[1]
    script = (
        "import sys, time\n"
        "if time.timezone == 0: sys.exit(99)\n"
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *sys.argv[1:]]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *TIME_ZONE_SENSITIVE],
        cwd=root, env={**os.environ, "TZ": zone}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode == 99:
        pytest.skip(f"no time zone database for {zone}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
