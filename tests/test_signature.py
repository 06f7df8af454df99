from __future__ import annotations

import hashlib
import random
import string

import pytest
from signalwire.request_validator import RequestValidator as SignalWireValidator
from twilio.request_validator import RequestValidator as TwilioValidator

from callpulse.signature import (
    BodyHashMismatch,
    MissingSignature,
    NoKeyForAccount,
    SignatureMismatch,
    SigningKeys,
    compatibility_signature,
    native_signature,
    url_variants,
    verify,
)

VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
JSON_BODY = b'{"event":"call.state"}'
JSON_URL = f"https://example.ngrok.io/webhook?bodySHA256={hashlib.sha256(JSON_BODY).hexdigest()}"


def test_reference_vector_compatibility() -> None:
    signature = compatibility_signature("12345", VECTOR_URL, VECTOR_PARAMS.items())
    assert signature == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    verify(
        url=VECTOR_URL,
        signature=signature,
        keys=["12345"],
        account_sid="",
        params=list(VECTOR_PARAMS.items()),
    )


def test_reference_vector_body_sha256() -> None:
    assert compatibility_signature("PSKtest1234567890abcdef", JSON_URL) == (
        "dfO9ek8mxyFtn2nMz24plPmPfIY="
    )
    verify(
        url=JSON_URL,
        signature="dfO9ek8mxyFtn2nMz24plPmPfIY=",
        keys=["PSKtest1234567890abcdef"],
        account_sid="",
        body=JSON_BODY,
    )
    with pytest.raises(BodyHashMismatch):
        verify(
            url=JSON_URL,
            signature="dfO9ek8mxyFtn2nMz24plPmPfIY=",
            keys=["PSKtest1234567890abcdef"],
            account_sid="",
            body=JSON_BODY + b" ",
        )


def _random_case(rng: random.Random) -> tuple[str, str, dict[str, str]]:
    alphabet = string.ascii_letters + string.digits + " +-_.:/&=?%é"
    key = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(8, 40)))
    host = rng.choice(["example.com", "example.com:8443", "calls.example.org"])
    scheme = rng.choice(["http", "https"])
    url = f"{scheme}://{host}/hook/{rng.randint(1, 999)}" + rng.choice(["", "?a=1&b=two"])
    params = {
        "".join(rng.choices(string.ascii_letters, k=rng.randint(1, 12))): "".join(
            rng.choices(alphabet, k=rng.randint(0, 30))
        )
        for _ in range(rng.randint(0, 12))
    }
    return key, url, params


def test_matches_official_validators_on_random_requests() -> None:
    rng = random.Random(20261127)
    for _ in range(300):
        key, url, params = _random_case(rng)
        ours = compatibility_signature(key, url, params.items())
        assert ours == TwilioValidator(key).compute_signature(url, params)
        assert ours == SignalWireValidator(key).build_signature_with_compatibility(url, params)
        # what the official SDKs sign, we accept (and the other way round)
        verify(url=url, signature=ours, keys=[key], account_sid="", params=list(params.items()))
        assert SignalWireValidator(key).validate(url, params, ours)


def test_native_scheme_matches_signalwire_validator() -> None:
    url = "https://example.com/relay"
    body = JSON_BODY
    expected = SignalWireValidator("PSKkey").build_signature(url, body.decode())
    assert native_signature("PSKkey", url, body) == expected
    verify(url=url, signature=expected, keys=["PSKkey"], account_sid="", body=body)


@pytest.mark.parametrize(
    ("url", "variants"),
    [
        ("https://a.example/x?q=1", ("https://a.example/x?q=1", "https://a.example:443/x?q=1")),
        ("https://a.example:443/x", ("https://a.example:443/x", "https://a.example/x")),
        ("http://a.example/x", ("http://a.example/x", "http://a.example:80/x")),
        ("http://a.example:8080/x", ("http://a.example:8080/x",)),
    ],
)
def test_url_variants_toggle_the_standard_port(url: str, variants: tuple[str, ...]) -> None:
    assert url_variants(url) == variants


def test_signature_over_url_with_port_verifies_without_it_and_back() -> None:
    params = [("CallSid", "CA1")]
    with_port = compatibility_signature("k", "https://h.example:443/cb", params)
    verify(
        url="https://h.example/cb", signature=with_port, keys=["k"], account_sid="", params=params
    )
    without_port = compatibility_signature("k", "https://h.example/cb", params)
    verify(
        url="https://h.example:443/cb",
        signature=without_port,
        keys=["k"],
        account_sid="",
        params=params,
    )


def test_each_failure_has_its_own_error() -> None:
    params = [("CallSid", "CA1")]
    good = compatibility_signature("k", "https://h/cb", params)
    with pytest.raises(MissingSignature):
        verify(url="https://h/cb", signature=None, keys=["k"], account_sid="", params=params)
    with pytest.raises(NoKeyForAccount, match="AC9"):
        verify(url="https://h/cb", signature=good, keys=[], account_sid="AC9", params=params)
    with pytest.raises(SignatureMismatch):
        verify(url="https://h/cb", signature=good, keys=["other"], account_sid="", params=params)
    with pytest.raises(SignatureMismatch):  # a changed parameter breaks the signature
        verify(
            url="https://h/cb",
            signature=good,
            keys=["k"],
            account_sid="",
            params=[("CallSid", "CA2")],
        )


def test_any_of_several_keys_verifies() -> None:
    params = [("CallSid", "CA1")]
    signature = compatibility_signature("new", "https://h/cb", params)
    verify(
        url="https://h/cb", signature=signature, keys=["old", "new"], account_sid="", params=params
    )


def test_signing_keys_parsing() -> None:
    assert SigningKeys.parse("") == SigningKeys()
    assert not SigningKeys.parse(" , ")
    shared = SigningKeys.parse("PSKone")
    assert shared.for_account("anything") == ("PSKone",)
    keys = SigningKeys.parse("AC1=k1, AC1=k1b, AC2=k2")
    assert keys.for_account("AC1") == ("k1", "k1b")
    assert keys.for_account("AC2") == ("k2",)
    assert keys.for_account("AC3") == ()
    with pytest.raises(ValueError, match="AccountSid=key"):
        SigningKeys.parse("AC1=")
