from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callpulse.callback import (
    KEY_FIELDS,
    UNKNOWN_STATUS,
    WITHHELD,
    CallbackError,
    CallRecord,
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


def test_only_a_call_that_cannot_be_keyed_is_refused() -> None:
    with pytest.raises(CallbackError) as info:
        parse_callback({}, RECEIVED)
    assert info.value.errors == {name: "required field is missing" for name in KEY_FIELDS}


@pytest.mark.parametrize(
    ("field", "value"),
    [("CallSid", ""), ("CallSid", "a b"), ("AccountSid", "x" * 65), ("AccountSid", 12),
     ("CallSid", "-leading-dash"), ("CallSid", None)],
)  # fmt: skip
def test_key_that_is_not_an_id_is_named_with_the_fix(field: str, value: Any) -> None:
    with pytest.raises(CallbackError) as info:
        parse(**{field: value})
    assert list(info.value.errors) == [field]
    assert "letters, digits" in info.value.errors[field]


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
    ("To", "sip:support@pbx.example.com", {}, "sip:support@pbx.example.com", None),
    ("To", "+999123", {}, "+999123", None),
    ("To", "anonymous", {}, "anonymous", "not an E.164 number, SIP URI or client identifier"),
    ("To", "", {}, "", "empty"),
    ("To", _ABSENT, {}, "", "missing"),
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
        expected_raw = "" if raw is _ABSENT else raw if isinstance(raw, str) else json.dumps(raw)
        assert problem.value == expected_raw


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
    ],
)
def test_timestamp_variants_are_stored_in_utc(text: Any, expected: datetime) -> None:
    record = parse(Timestamp=text)
    assert record.started_at == expected
    assert record.started_at.utcoffset() is not None
    assert record.started_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
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
    ],
)
def test_an_unusable_timestamp_takes_the_time_of_receipt_marked(text: Any, why: str) -> None:
    record = parse(Timestamp=text) if text is not _ABSENT else parse(Timestamp=_ABSENT)
    assert record.started_at == RECEIVED_MS
    assert list(problems(record)) == ["Timestamp"]
    assert problems(record)["Timestamp"].startswith(why)
    assert problems(record)["Timestamp"].endswith("the time of receipt is used")


def test_several_problems_are_all_reported() -> None:
    record = parse(From="x", AudioInMos="9", CallDuration="-2")
    assert set(problems(record)) == {"From", "AudioInMos", "CallDuration"}


def test_unknown_fields_are_kept() -> None:
    record = parse(Direction="inbound", SipResultCode="200")
    assert record.extra == {"Direction": "inbound", "SipResultCode": "200"}


@pytest.mark.parametrize(
    ("fields", "cleaned_field", "stored"),
    [
        ({"Note": "\ud800"}, "Note", "\ufffd"),
        ({"Note": "a\x00b"}, "Note", "a\ufffdb"),
        ({"Note": {"deep": ["\udfff"]}}, "Note", {"deep": ["\ufffd"]}),
        ({"To": "+1800\x1b[2J"}, "To", "+1800\ufffd[2J"),
    ],
)
def test_invalid_text_is_replaced_once_and_noted(
    fields: dict[str, Any], cleaned_field: str, stored: Any
) -> None:
    record = parse(**fields)
    value = record.to_number if cleaned_field == "To" else record.extra[cleaned_field]
    assert value == stored
    problem = record.problem(cleaned_field)
    assert problem is not None and "replaced by U+FFFD" in problem.why
    assert problem.value.isascii()  # the raw value, escaped, so it can be stored and exported
    json.dumps(record.extra, ensure_ascii=False).encode("utf-8")  # exportable


def test_text_with_tabs_and_newlines_is_kept_as_sent() -> None:
    assert parse(Note="a\tb\nc\r").extra == {"Note": "a\tb\nc\r"}


def test_form_and_json_decoding() -> None:
    pairs = decode_form(b"CallSid=abc&From=%2B15551234567&Empty=&&a=1")
    assert pairs == [("CallSid", "abc"), ("From", "+15551234567"), ("Empty", ""), ("a", "1")]
    assert decode_form(b"From=+15551234567") == [("From", " 15551234567")]  # a raw '+'
    assert decode_form(b"k%3Dx=v%26w") == [("k=x", "v&w")]
    assert decode_json(b'{"CallSid": "abc"}') == {"CallSid": "abc"}
    with pytest.raises(CallbackError, match="JSON body must be an object"):
        decode_json(b"[1, 2]")
    with pytest.raises(CallbackError, match="invalid JSON"):
        decode_json(b"{nope")
    with pytest.raises(CallbackError, match="invalid JSON"):
        decode_json(b'{"a": NaN}')
    with pytest.raises(CallbackError, match="invalid JSON"):
        decode_json(b"[" * 100_000)
    with pytest.raises(CallbackError, match="UTF-8"):
        decode_form(b"From=\xff\xfe")


def test_repeated_documented_field_is_rejected_in_every_encoding() -> None:
    with pytest.raises(CallbackError) as info:
        fields_from_pairs([("CallSid", "a"), ("CallSid", "b")])
    assert info.value.errors == {"CallSid": "given more than once"}
    with pytest.raises(CallbackError) as info:
        decode_json(b'{"AudioInMos": "4.5", "AudioInMos": "1.0"}')
    assert info.value.errors == {"AudioInMos": "given more than once"}
    assert fields_from_pairs([("Other", "a"), ("Other", "b")]) == {"Other": "b"}


def test_to_fields_round_trips() -> None:
    record = parse(Direction="inbound")
    assert parse_callback(to_fields(record), RECEIVED) == record
    assert to_fields(parse()) == EXAMPLE_PAYLOAD
    failed = parse(CallStatus="failed", CallDuration=_ABSENT, AudioInMos="")
    assert (failed.duration_s, failed.mos, failed.problems) == (None, None, ())
    assert parse_callback(to_fields(failed), RECEIVED) == failed


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.lists(st.text(), max_size=3),
    st.dictionaries(st.text(), st.text(), max_size=3),
)


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
