"""CallbackGate: every kind of body, and the exact refusal of each one that is not a callback."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from callpulse.callback import Problem
from callpulse.ingest.gate import CallbackGate, RawCallback, Rejected
from callpulse.signature import SigningKeys
from tests.ingest.raw import FORM, RECEIVED, URL, form, raw
from tests.support import EXAMPLE_PAYLOAD, SIGNING_KEY, callback_fields

LIMIT = 4096
# the body alone: the signature is the subject of test_gate_signatures.py
UNSIGNED = CallbackGate(SigningKeys(), max_body_bytes=LIMIT, verify_signatures=False)
MISSING_KEYS = {"CallSid": "required field is missing", "AccountSid": "required field is missing"}
NOT_ACCEPTED = "is not accepted; send application/x-www-form-urlencoded or application/json"


def refusal(gate: CallbackGate, request: RawCallback) -> Rejected:
    with pytest.raises(Rejected) as refused:
        gate.accept(request)
    return refused.value


def assert_refused(
    request: RawCallback, status: int, reason: str, errors: dict[str, str], message: str
) -> None:
    rejection = refusal(UNSIGNED, request)
    assert (rejection.status, rejection.reason, rejection.errors) == (status, reason, errors)
    assert str(rejection) == message


def test_a_form_callback_becomes_its_call() -> None:
    fields = callback_fields(Region="us-east")
    write = UNSIGNED.accept(raw(urlencode(fields).encode(), {"content-type": FORM}))
    record = write.record
    assert (record.call_sid, record.account_sid) == (fields["CallSid"], fields["AccountSid"])
    assert (record.from_number, record.to_number) == ("+15551234567", "+18005559876")
    assert (record.status, record.duration_s, record.mos) == ("completed", 142, 4.5)
    assert record.started_at.isoformat() == "2024-04-04T18:32:15+00:00"
    assert record.extra == {"Region": "us-east"} and record.problems == ()
    assert write.received_at == RECEIVED and write.source == "callback"


def test_a_json_callback_becomes_its_call_with_values_of_any_type() -> None:
    fields = {**callback_fields(), "CallDuration": 142, "AudioInMos": 4.5, "Tags": ["a", 1]}
    record = UNSIGNED.accept(
        raw(json.dumps(fields).encode(), {"content-type": "application/json"})
    ).record
    assert (record.duration_s, record.mos, record.extra) == (142, 4.5, {"Tags": ["a", 1]})
    assert record.problems == ()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "  application/json  ;charset=UTF-8",
        "application/cloudevents+json",
    ],
)
def test_json_media_types(content_type: str) -> None:
    fields = callback_fields()
    write = UNSIGNED.accept(raw(json.dumps(fields).encode(), {"content-type": content_type}))
    assert write.record.call_sid == fields["CallSid"]


@pytest.mark.parametrize(
    "content_type",
    [FORM, "application/x-www-form-urlencoded; charset=UTF-8", "APPLICATION/X-WWW-FORM-URLENCODED"],
)
def test_form_media_types(content_type: str) -> None:
    fields = callback_fields()
    write = UNSIGNED.accept(raw(urlencode(fields).encode(), {"content-type": content_type}))
    assert write.record.call_sid == fields["CallSid"]


def test_a_get_callback_is_read_from_the_query_whatever_the_body() -> None:
    fields = callback_fields(From="")  # blank values are kept: an empty From is withheld
    request = raw(
        b"CallSid=ignored",
        {"content-type": "text/plain"},
        method="GET",
        url=f"{URL}?{urlencode(fields)}",
    )
    record = UNSIGNED.accept(request).record
    assert record.call_sid == fields["CallSid"] and record.from_number == "withheld"
    assert record.problems == ()


def test_a_question_mark_in_a_get_query_is_part_of_it() -> None:
    """RFC 3986 lets a query hold '?' unencoded: the query starts at the first one."""
    fields = callback_fields()
    url = f"{URL}?{urlencode(fields)}&Note=why?not"
    record = UNSIGNED.accept(raw(b"", method="GET", url=url)).record
    assert record.call_sid == fields["CallSid"] and record.extra == {"Note": "why?not"}


def test_a_get_without_a_query_is_not_a_callback() -> None:
    assert_refused(raw(b"", method="GET"), 400, "invalid", MISSING_KEYS, "invalid callback")


def test_a_get_with_a_field_twice_is_refused() -> None:
    query = urlencode([*callback_fields().items(), ("CallStatus", "failed")])
    assert_refused(
        raw(b"", method="GET", url=f"{URL}?{query}"),
        400,
        "invalid",
        {"CallStatus": "given more than once"},
        "invalid callback",
    )


@pytest.mark.parametrize("content_type", [FORM, "application/json"])
def test_an_empty_body_is_refused(content_type: str) -> None:
    errors = (
        MISSING_KEYS
        if content_type == FORM
        else {"body": "invalid JSON (Expecting value: line 1 column 1 (char 0))"}
    )
    assert_refused(
        raw(b"", {"content-type": content_type}), 400, "invalid", errors, "invalid callback"
    )


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            b'{"CallSid": "CA1", "AccountSid": ',
            {"body": "invalid JSON (Expecting value: line 1 column 34 (char 33))"},
        ),
        (b"[]", {"body": "JSON body must be an object of callback fields"}),
        (b'"CallSid"', {"body": "JSON body must be an object of callback fields"}),
        (b'{"CallSid": NaN}', {"body": "invalid JSON (NaN is not a JSON value)"}),
        (
            b"{\xff}",
            {
                "body": "invalid JSON ('utf-8' codec can't decode byte 0xff in position 1: "
                "invalid start byte)"
            },
        ),
    ],
)
def test_a_json_body_that_is_not_a_callback_object(body: bytes, errors: dict[str, str]) -> None:
    assert_refused(
        raw(body, {"content-type": "application/json"}), 400, "invalid", errors, "invalid callback"
    )


def nested(levels: int) -> bytes:
    """A callback whose extra field nests objects and lists to ``levels`` in all."""
    inner: object = "deep"
    for level in range(levels - 1):
        inner = {"a": inner} if level % 2 else [inner]
    return json.dumps({**callback_fields(), "Extra": inner}).encode()


def test_json_may_nest_64_levels_not_65() -> None:
    assert UNSIGNED.accept(raw(nested(64), {"content-type": "application/json"})).record.extra
    assert_refused(
        raw(nested(65), {"content-type": "application/json"}),
        400,
        "invalid",
        {"body": "JSON nested deeper than 64 levels"},
        "invalid callback",
    )


@pytest.mark.parametrize(
    ("number", "shown"),
    [("1e400", "1e400"), ("-1" + "0" * 60 + ".5e300", "-1" + "0" * 38)],
)
def test_a_json_number_no_float_holds_is_not_a_callback(number: str, shown: str) -> None:
    body = json.dumps(callback_fields())[:-1] + f', "Jitter": {number}}}'
    assert_refused(
        raw(body.encode(), {"content-type": "application/json"}),
        400,
        "invalid",
        {"body": f"invalid JSON (number {shown} is out of range)"},
        "invalid callback",
    )


def test_a_form_body_that_is_not_utf8() -> None:
    body = urlencode(callback_fields()).encode() + b"&CallerName=\xe9"
    assert_refused(
        raw(body, {"content-type": FORM}),
        400,
        "invalid",
        {"body": "form body is not valid UTF-8"},
        "invalid callback",
    )


@pytest.mark.parametrize("encoding", ["form", "json"])
def test_a_documented_field_given_twice_is_refused_in_every_encoding(encoding: str) -> None:
    fields = callback_fields()
    if encoding == "form":
        request = raw(
            (urlencode(fields) + "&To=%2B18005550000&AudioInMos=1").encode(), {"content-type": FORM}
        )
    else:
        text = json.dumps(fields)[:-1] + ', "To": "+18005550000", "AudioInMos": "1"}'
        request = raw(text.encode(), {"content-type": "application/json"})
    assert_refused(
        request,
        400,
        "invalid",
        {"To": "given more than once", "AudioInMos": "given more than once"},
        "invalid callback",
    )


def test_an_undocumented_field_given_twice_keeps_the_last() -> None:
    body = (urlencode(callback_fields()) + "&Tag=a&Tag=b").encode()
    assert UNSIGNED.accept(raw(body, {"content-type": FORM})).record.extra == {"Tag": "b"}


@pytest.mark.parametrize(
    ("headers", "shown"),
    [
        ({"content-type": "text/plain"}, "'text/plain'"),
        ({"content-type": "multipart/form-data; boundary=x"}, "'multipart/form-data'"),
        ({"content-type": "TEXT/XML; charset=utf-8"}, "'text/xml'"),
        ({}, "''"),
    ],
)
def test_another_media_type_is_unsupported(headers: dict[str, str], shown: str) -> None:
    body = urlencode(callback_fields()).encode()
    assert_refused(
        raw(body, headers),
        415,
        "unsupported",
        {"Content-Type": f"{shown} {NOT_ACCEPTED}"},
        "unsupported media type",
    )


def test_a_body_at_the_limit_is_taken_one_byte_over_is_too_large() -> None:
    fields = callback_fields()
    body = urlencode(fields).encode()
    body += b"&Pad=" + b"x" * (LIMIT - len(body) - 5)
    assert len(body) == LIMIT
    assert UNSIGNED.accept(raw(body, {"content-type": FORM})).record.call_sid == fields["CallSid"]
    assert_refused(
        raw(body + b"x", {"content-type": FORM}),
        413,
        "too_large",
        {"body": f"{LIMIT + 1} bytes is over the {LIMIT}-byte limit"},
        "request body too large",
    )


def test_a_body_cut_short_is_too_large_whatever_its_size() -> None:
    """The reader stopped at its limit (``body_size`` counts what was sent): what is left is
    not the request the sender signed, even when the gate's own limit is larger."""
    body = urlencode(callback_fields()).encode()
    assert_refused(
        raw(body[:100], {"content-type": FORM}, body_size=len(body)),
        413,
        "too_large",
        {"body": f"{len(body)} bytes is over the {LIMIT}-byte limit"},
        "request body too large",
    )


def test_the_size_is_checked_before_anything_else() -> None:
    gate = CallbackGate(SigningKeys.parse(SIGNING_KEY), max_body_bytes=10)
    rejection = refusal(gate, raw(b"\xff" * 11, {"content-type": "text/plain"}))
    assert (rejection.status, rejection.reason) == (413, "too_large")


def test_the_body_is_read_before_the_signature_is_checked() -> None:
    """An unparseable or unsupported body is a 400 or 415 even unsigned: what it says cannot
    be known, so neither can the AccountSid whose keys would check it."""
    gate = CallbackGate(SigningKeys.parse(SIGNING_KEY), max_body_bytes=LIMIT)
    assert refusal(gate, raw(b"{", {"content-type": "application/json"})).status == 400
    assert refusal(gate, raw(b"a=1", {"content-type": "text/plain"})).status == 415


def test_a_signed_callback_without_its_keys_is_refused_after_the_signature() -> None:
    gate = CallbackGate(SigningKeys.parse(SIGNING_KEY), max_body_bytes=LIMIT)
    unkeyed = {k: v for k, v in EXAMPLE_PAYLOAD.items() if k not in ("CallSid", "AccountSid")}
    rejection = refusal(gate, form(unkeyed))
    assert (rejection.status, rejection.errors) == (400, MISSING_KEYS)
    assert refusal(gate, form(unkeyed, key="another key")).status == 403


def test_fields_that_cannot_be_taken_as_sent_are_problems_of_the_stored_call() -> None:
    fields = callback_fields(CallStatus="failed", AudioInMos="7.2", Timestamp="yesterday")
    record = UNSIGNED.accept(raw(urlencode(fields).encode(), {"content-type": FORM})).record
    assert record.mos is None
    assert record.problems == (
        Problem("AudioInMos", "7.2", "out of range (1-5)"),
        Problem(
            "Timestamp",
            "yesterday",
            "unparseable: expected RFC 2822 ('Thu, 04 Apr 2024 18:32:15 +0000'), ISO 8601 or "
            "Unix seconds; the time of receipt is used",
        ),
    )
    # the time of receipt of this request, to the millisecond
    assert record.started_at == RECEIVED.replace(microsecond=123000)


def test_a_call_that_cannot_be_keyed_names_each_field() -> None:
    body = urlencode(callback_fields(CallSid="not an id", AccountSid="")).encode()
    assert_refused(
        raw(body, {"content-type": FORM}),
        400,
        "invalid",
        {
            "CallSid": "must be 1-64 letters, digits, '-' or '_'",
            "AccountSid": "must be 1-64 letters, digits, '-' or '_'",
        },
        "invalid callback",
    )
