from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callpulse.callback import (
    REQUIRED_FIELDS,
    WITHHELD,
    CallbackError,
    decode_form,
    decode_json,
    fields_from_pairs,
    parse_callback,
    to_fields,
)
from tests.support import EXAMPLE_PAYLOAD


def errors_for(**overrides: object) -> dict[str, str]:
    with pytest.raises(CallbackError) as info:
        parse_callback({**EXAMPLE_PAYLOAD, **overrides})
    return info.value.errors


def test_document_example_parses_to_exact_values() -> None:
    record = parse_callback(EXAMPLE_PAYLOAD)
    assert record.call_sid == "b3877c40-da60-4998-90ad-b792e98472ca"
    assert record.account_sid == "b3877c40-da60-4998-90ad-b792e98472af"
    assert record.from_number == "+15551234567"
    assert record.to_number == "+18005559876"
    assert record.started_at == datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)
    assert record.status == "completed"
    assert record.duration_s == 142
    assert record.mos == 4.5
    assert record.extra == {}


def test_every_missing_field_is_named() -> None:
    with pytest.raises(CallbackError) as info:
        parse_callback({})
    assert set(info.value.errors) == set(REQUIRED_FIELDS)
    assert all(why == "required field is missing" for why in info.value.errors.values())


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("From", "15551234567", "E.164"),
        ("From", "+0123", "E.164"),
        ("To", "+1234567890123456", "E.164"),
        ("To", "anonymous", "E.164"),
        ("Timestamp", "yesterday", "RFC 2822"),
        ("Timestamp", "2024-04-04T18:32:15", "offset"),
        ("CallStatus", "COMPLETED", "one of"),
        ("CallStatus", "done", "one of"),
        ("CallDuration", "-1", "whole number"),
        ("CallDuration", "1.5", "whole number"),
        ("CallDuration", "99999999", "between"),
        ("AudioInMos", "0.5", "from 1 to 5"),
        ("AudioInMos", "5.01", "from 1 to 5"),
        ("AudioInMos", "nan", "from 1 to 5"),
        ("AudioInMos", "good", "from 1 to 5"),
        ("CallSid", "", "letters"),
        ("AccountSid", "a b", "letters"),
    ],
)
def test_bad_field_is_named_with_the_fix(field: str, value: str, hint: str) -> None:
    errors = errors_for(**{field: value})
    assert list(errors) == [field]
    assert hint in errors[field]


def test_several_bad_fields_are_all_reported() -> None:
    assert set(errors_for(From="x", AudioInMos="9", CallDuration="-2")) == {
        "From",
        "AudioInMos",
        "CallDuration",
    }


@pytest.mark.parametrize("caller", ["anonymous", "Restricted", "unknown", "", "private"])
def test_withheld_callers_are_stored_as_withheld(caller: str) -> None:
    assert parse_callback({**EXAMPLE_PAYLOAD, "From": caller}).from_number == WITHHELD


def test_unassigned_but_well_formed_numbers_are_accepted() -> None:
    record = parse_callback({**EXAMPLE_PAYLOAD, "From": "+15550000000", "To": "+999123"})
    assert (record.from_number, record.to_number) == ("+15550000000", "+999123")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thu, 04 Apr 2024 18:32:15 +0000", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thu, 04 Apr 2024 20:32:15 +0200", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("Thu, 04 Apr 2024 18:32:15 -0000", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("2024-04-04T18:32:15Z", datetime(2024, 4, 4, 18, 32, 15, tzinfo=UTC)),
        ("2024-04-04T13:32:15.250-05:00", datetime(2024, 4, 4, 18, 32, 15, 250000, tzinfo=UTC)),
    ],
)
def test_timestamps_are_stored_in_utc(text: str, expected: datetime) -> None:
    started = parse_callback({**EXAMPLE_PAYLOAD, "Timestamp": text}).started_at
    assert started == expected
    assert started.utcoffset() is not None and started.utcoffset().total_seconds() == 0


def test_json_numbers_are_accepted_for_numeric_fields() -> None:
    record = parse_callback({**EXAMPLE_PAYLOAD, "CallDuration": 142, "AudioInMos": 4})
    assert (record.duration_s, record.mos) == (142, 4.0)
    assert set(errors_for(CallDuration=True, AudioInMos=None)) == {"CallDuration", "AudioInMos"}


def test_unknown_fields_are_kept() -> None:
    record = parse_callback({**EXAMPLE_PAYLOAD, "Direction": "inbound", "SipResultCode": "200"})
    assert record.extra == {"Direction": "inbound", "SipResultCode": "200"}


def test_form_and_json_decoding() -> None:
    pairs = decode_form(b"CallSid=abc&From=%2B15551234567&Empty=")
    assert pairs == [("CallSid", "abc"), ("From", "+15551234567"), ("Empty", "")]
    assert decode_json(b'{"CallSid": "abc"}') == {"CallSid": "abc"}
    with pytest.raises(CallbackError, match="JSON body must be an object"):
        decode_json(b"[1, 2]")
    with pytest.raises(CallbackError, match="invalid JSON"):
        decode_json(b"{nope")
    with pytest.raises(CallbackError, match="UTF-8"):
        decode_form(b"From=\xff\xfe")


def test_repeated_documented_field_is_rejected() -> None:
    with pytest.raises(CallbackError) as info:
        fields_from_pairs([("CallSid", "a"), ("CallSid", "b")])
    assert info.value.errors == {"CallSid": "given more than once"}


def test_to_fields_round_trips() -> None:
    record = parse_callback({**EXAMPLE_PAYLOAD, "Direction": "inbound"})
    assert parse_callback(to_fields(record)) == record
    assert to_fields(parse_callback(EXAMPLE_PAYLOAD)) == EXAMPLE_PAYLOAD
