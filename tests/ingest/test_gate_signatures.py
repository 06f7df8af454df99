"""CallbackGate: every signature header and scheme, keys, and unsigned requests.

Signatures are made by the official validators: twilio's and the ``signalwire`` 2.x
RequestValidator (SHA-1), and ``signalwire-sdk`` 3.7.5's webhook validator (SHA-256, scheme B
over the URL alone), whose verdict on each request is checked too.
"""

from __future__ import annotations

import hashlib
import json
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest
from signalwire.request_validator import RequestValidator as SignalWireValidator
from twilio.request_validator import RequestValidator as TwilioValidator

from callpulse.callback import Problem
from callpulse.config import Settings
from callpulse.ingest.gate import UNCOVERED_WHY, CallbackGate, RawCallback, Rejected, gate_for
from callpulse.signature import SigningKeys
from tests.ingest.raw import FORM, URL, form, json_signed_as_form, raw
from tests.support import ACCOUNT_SID, SIGNING_KEY, callback_fields

LIMIT = 65536
GATE = CallbackGate(SigningKeys.parse(SIGNING_KEY), max_body_bytes=LIMIT)
MISMATCH = (
    "signature does not match any configured signing key for this URL "
    "(check CALLPULSE_SIGNING_KEYS and CALLPULSE_PUBLIC_URL)"
)
MISSING = (
    "missing X-SignalWire-Signature (or X-Twilio-Signature, X-SignalWire-Sha256-Signature) header"
)


def refused(gate: CallbackGate, request: RawCallback) -> str:
    """The signature error of a refused request, after checking the rest of the refusal."""
    with pytest.raises(Rejected) as rejection:
        gate.accept(request)
    assert (rejection.value.status, rejection.value.reason) == (403, "signature")
    assert str(rejection.value) == "signature check failed"
    (name, why), *others = rejection.value.errors.items()
    assert name == "X-SignalWire-Signature" and others == []
    return why


def json_request(fields: dict[str, Any], url: str = URL, **headers: str) -> RawCallback:
    return raw(
        json.dumps(fields).encode(), {"content-type": "application/json", **headers}, url=url
    )


# --- SHA-1 headers --------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["x-signalwire-signature", "x-twilio-signature"])
def test_a_form_signed_by_the_official_validators_is_accepted(header: str) -> None:
    fields = callback_fields()
    request = form(fields, header=header)
    signed = SignalWireValidator(SIGNING_KEY).build_signature_with_compatibility(URL, fields)
    assert request.headers[header] == signed  # both validators sign a form alike
    record = GATE.accept(request).record
    assert record.call_sid == fields["CallSid"] and record.problems == ()


def test_a_changed_form_or_url_is_refused() -> None:
    request = form(callback_fields())
    changed = raw(request.body.replace(b"142", b"143"), request.headers)
    assert refused(GATE, changed) == MISMATCH
    elsewhere = raw(request.body, request.headers, url=URL + "?x=1")
    assert refused(GATE, elsewhere) == MISMATCH


def test_a_form_signed_with_another_key_is_refused() -> None:
    assert refused(GATE, form(callback_fields(), key="PSKanother-key")) == MISMATCH


def test_a_get_signed_over_its_url_is_accepted_and_covered() -> None:
    url = f"{URL}?{urlencode(callback_fields())}"
    signature = TwilioValidator(SIGNING_KEY).compute_signature(url, {})
    request = raw(b"", {"x-twilio-signature": signature}, method="GET", url=url)
    assert GATE.accept(request).record.problems == ()
    assert (
        refused(GATE, raw(b"", {"x-twilio-signature": signature}, method="GET", url=url + "&a=b"))
        == MISMATCH
    )


def test_json_fields_signed_as_parameters_are_accepted_and_covered() -> None:
    fields = {**callback_fields(), "CallDuration": 142, "AudioInMos": 4.5, "Queued": None}
    record = GATE.accept(json_signed_as_form(fields)).record
    assert (record.duration_s, record.mos, record.problems) == (142, 4.5, ())


def test_json_signed_over_url_and_body_native_is_accepted_and_covered() -> None:
    body = json.dumps(callback_fields())
    signature = SignalWireValidator(SIGNING_KEY).build_signature(URL, body)
    request = raw(
        body.encode(), {"content-type": "application/json", "x-signalwire-signature": signature}
    )
    assert GATE.accept(request).record.problems == ()


# --- SHA-256 --------------------------------------------------------------------------------


def sha256_form(sdk: ModuleType, fields: dict[str, str], key: str = SIGNING_KEY) -> RawCallback:
    body = urlencode(fields)
    signature = sdk._hex_hmac_sha256(key, URL + body)
    assert sdk.validate_webhook_signature_sha256(key, signature, URL, body)
    return raw(body.encode(), {"content-type": FORM, "x-signalwire-sha256-signature": signature})


def test_the_sha256_header_alone_is_accepted(sdk: ModuleType) -> None:
    fields = callback_fields()
    assert GATE.accept(sha256_form(sdk, fields)).record.call_sid == fields["CallSid"]


def test_the_sha256_header_decides_over_a_wrong_sha1_one(sdk: ModuleType) -> None:
    request = sha256_form(sdk, callback_fields())
    both = raw(request.body, {**request.headers, "x-signalwire-signature": "AAAA"})
    assert GATE.accept(both).record.problems == ()


def test_a_wrong_sha256_header_is_refused_even_with_a_right_sha1_one(sdk: ModuleType) -> None:
    fields = callback_fields()
    sha1 = form(fields)
    wrong = sha256_form(sdk, fields, key="PSKanother-key")
    request = raw(sha1.body, {**sha1.headers, **wrong.headers})
    assert refused(GATE, request) == (
        "X-SignalWire-Sha256-Signature does not match any configured signing key for this URL "
        "and body (the SHA-1 signature does match: the request was altered) "
        "(check CALLPULSE_SIGNING_KEYS and CALLPULSE_PUBLIC_URL)"
    )


def test_a_sha256_header_over_another_body_is_refused(sdk: ModuleType) -> None:
    request = sha256_form(sdk, callback_fields())
    changed = raw(request.body.replace(b"142", b"143"), request.headers)
    assert refused(GATE, changed).startswith("X-SignalWire-Sha256-Signature does not match")


# --- scheme B over the URL alone ------------------------------------------------------------


def url_only(sdk: ModuleType, fields: dict[str, Any], url: str = URL) -> RawCallback:
    signature = sdk._b64_hmac_sha1(SIGNING_KEY, url)
    request = json_request(fields, url, **{"x-signalwire-signature": signature})
    assert sdk.validate_webhook_signature(SIGNING_KEY, signature, url, request.body.decode())
    return request


def test_json_signed_over_the_url_alone_is_stored_with_a_problem(sdk: ModuleType) -> None:
    fields = callback_fields(AudioInMos="9")
    record = GATE.accept(url_only(sdk, fields)).record
    assert record.call_sid == fields["CallSid"]
    # after the problems of the fields, in the order the record keeps them
    assert record.problems == (
        Problem("AudioInMos", "9", "out of range (1-5)"),
        Problem("signature", "url-only", UNCOVERED_WHY),
    )
    assert UNCOVERED_WHY == (
        "body not covered by the signature (it signs the URL only): anyone holding one signed "
        "URL could send any body; CALLPULSE_REFUSE_UNCOVERED_BODIES=true refuses such callbacks"
    )


def test_the_refuse_setting_refuses_json_signed_over_the_url_alone(sdk: ModuleType) -> None:
    gate = CallbackGate(SigningKeys.parse(SIGNING_KEY), LIMIT, refuse_uncovered=True)
    assert refused(gate, url_only(sdk, callback_fields())) == (
        "the signature covers the URL only, not the body (JSON without bodySHA256), and "
        "CALLPULSE_REFUSE_UNCOVERED_BODIES refuses such signatures"
    )
    # what the signature covers is still accepted
    assert gate.accept(json_signed_as_form(callback_fields())).record.problems == ()


def with_body_hash(body: bytes, digest: str | None = None) -> str:
    return f"{URL}?bodySHA256={digest or hashlib.sha256(body).hexdigest()}"


def test_json_whose_hash_is_in_the_signed_url_is_covered(sdk: ModuleType) -> None:
    body = json.dumps(callback_fields()).encode()
    url = with_body_hash(body)
    signature = TwilioValidator(SIGNING_KEY).compute_signature(url, {})
    assert TwilioValidator(SIGNING_KEY).validate(url, body.decode(), signature)
    request = raw(
        body, {"content-type": "application/json", "x-twilio-signature": signature}, url=url
    )
    gate = CallbackGate(SigningKeys.parse(SIGNING_KEY), LIMIT, refuse_uncovered=True)
    assert gate.accept(request).record.problems == ()
    other = json.dumps(callback_fields()).encode()
    assert refused(gate, raw(other, request.headers, url=url)) == (
        "bodySHA256 in the URL does not match the SHA-256 of the body"
    )


def test_with_a_body_hash_in_the_url_the_fields_are_not_signed_parameters() -> None:
    """The URL's hash, not the fields, stands for the body: a signature over the URL and the
    fields does not make up for a hash that is wrong."""
    fields = callback_fields()
    request = json_signed_as_form(fields, url=with_body_hash(b"", "0" * 64))
    assert refused(GATE, request) == MISMATCH


# --- keys -----------------------------------------------------------------------------------

OTHER_ACCOUNT = "c0ffee00-da60-4998-90ad-b792e98472af"
KEYS = SigningKeys.parse(f"{ACCOUNT_SID}=PSKold,{ACCOUNT_SID}=PSKnew,PSKshared")


@pytest.mark.parametrize("key", ["PSKold", "PSKnew", "PSKshared"])
def test_each_key_of_an_account_and_the_shared_ones_are_accepted(key: str) -> None:
    gate = CallbackGate(KEYS, LIMIT)
    assert gate.accept(form(callback_fields(), key=key)).record.account_sid == ACCOUNT_SID


def test_another_accounts_key_is_refused() -> None:
    gate = CallbackGate(KEYS, LIMIT)
    other = callback_fields(AccountSid=OTHER_ACCOUNT)
    assert gate.accept(form(other, key="PSKshared")).record.account_sid == OTHER_ACCOUNT
    assert refused(gate, form(other, key="PSKold")) == MISMATCH


def test_an_account_without_a_key_is_named() -> None:
    gate = CallbackGate(SigningKeys.parse(f"{ACCOUNT_SID}=PSKold"), LIMIT)
    assert refused(gate, form(callback_fields(AccountSid=OTHER_ACCOUNT), key="PSKold")) == (
        f"no signing key configured for AccountSid '{OTHER_ACCOUNT}' "
        "(add it to CALLPULSE_SIGNING_KEYS as AccountSid=key)"
    )


def test_an_account_sid_that_is_not_text_has_no_keys_but_the_shared_ones() -> None:
    gate = CallbackGate(SigningKeys.parse(f"{ACCOUNT_SID}=PSKold"), LIMIT)
    fields: dict[str, Any] = {**callback_fields(), "AccountSid": 7}
    assert refused(gate, json_signed_as_form(fields, key="PSKold")).startswith(
        "no signing key configured for AccountSid '' "
    )


# --- unsigned -------------------------------------------------------------------------------


def test_an_unsigned_request_is_refused() -> None:
    request = raw(urlencode(callback_fields()).encode(), {"content-type": FORM})
    assert refused(GATE, request) == MISSING
    assert (
        refused(GATE, raw(request.body, {**request.headers, "x-signalwire-signature": ""}))
        == MISSING
    )


def test_unchecked_signatures_let_anything_through_and_mark_nothing() -> None:
    gate = CallbackGate(SigningKeys(), LIMIT, verify_signatures=False)
    fields = callback_fields()
    unsigned = raw(urlencode(fields).encode(), {"content-type": FORM})
    assert gate.accept(unsigned).record.call_sid == fields["CallSid"]
    forged = json_request(fields, **{"x-signalwire-signature": "AAAA"})
    assert gate.accept(forged).record.problems == ()


@pytest.mark.parametrize(
    ("keys", "allow_unsigned", "checked"),
    [("", False, True), ("", True, False), (SIGNING_KEY, False, True), (SIGNING_KEY, True, True)],
)
def test_gate_for_checks_signatures_whenever_there_are_keys(
    keys: str, allow_unsigned: bool, checked: bool
) -> None:
    settings = Settings(signing_keys=SigningKeys.parse(keys), max_body_bytes=1234)
    gate = gate_for(settings, allow_unsigned)
    assert gate == CallbackGate(SigningKeys.parse(keys), 1234, checked, refuse_uncovered=False)


def test_gate_for_takes_the_refuse_setting() -> None:
    settings = Settings(signing_keys=SigningKeys.parse(SIGNING_KEY), refuse_uncovered_bodies=True)
    gate = gate_for(settings)
    assert gate == CallbackGate(SigningKeys.parse(SIGNING_KEY), 65536, True, refuse_uncovered=True)
    assert gate_for(Settings()).verify_signatures  # unsigned only when asked for
