from __future__ import annotations

import hashlib
import hmac
import json
import random
import string
from urllib.parse import urlencode

import pytest
from signalwire.request_validator import RequestValidator as SignalWireValidator
from twilio.request_validator import RequestValidator as TwilioValidator

from callpulse.ingest.gate import CallbackGate, RawCallback, Rejected
from callpulse.signature import (
    SHA256_SIGNATURE_HEADER,
    BodyHashMismatch,
    MissingSignature,
    NoKeyForAccount,
    Sha256Mismatch,
    SignatureMismatch,
    SigningKeys,
    UncoveredBody,
    Verified,
    body_sha256,
    compatibility_signature,
    header_value,
    header_values,
    hmac_sha256_signature,
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


# --- SHA-256, url-only bodies, header helpers --------------------------------------------------

NATIVE_URL = "https://example.com/relay"


def _sha256_hex(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def test_header_values_reads_both_headers_and_the_twilio_alias() -> None:
    assert header_values({}) == (None, None)
    assert header_values({"x-signalwire-signature": "a", SHA256_SIGNATURE_HEADER: "b"}) == (
        "a",
        "b",
    )
    assert header_values({"x-twilio-signature": "t"}) == ("t", None)
    assert header_values({"x-signalwire-signature": "", "x-twilio-signature": "t"}) == ("t", None)
    assert header_values({SHA256_SIGNATURE_HEADER: ""}) == (None, None)
    assert SHA256_SIGNATURE_HEADER == "x-signalwire-sha256-signature"
    assert header_value({"x-signalwire-signature": "s", "x-twilio-signature": "t"}) == "s"


def test_sha256_signature_verifies_and_covers_the_body() -> None:
    expected = _sha256_hex("PSKkey", NATIVE_URL.encode() + JSON_BODY)
    assert hmac_sha256_signature("PSKkey", NATIVE_URL, JSON_BODY) == expected
    result = verify(
        url=NATIVE_URL,
        signature=None,
        sha256_signature=expected,
        keys=["PSKkey"],
        account_sid="",
        body=JSON_BODY,
        allow_uncovered=False,
    )
    assert result == Verified("sha256", body_covered=True)


def test_sha256_signature_over_either_spelling_of_the_port() -> None:
    with_port = hmac_sha256_signature("k", "https://h.example:443/cb", b"x=1")
    assert verify(
        url="https://h.example/cb",
        signature=None,
        sha256_signature=with_port,
        keys=["k"],
        account_sid="",
        body=b"x=1",
    ) == Verified("sha256", True)
    without_port = hmac_sha256_signature("k", "https://h.example/cb", b"x=1")
    assert verify(
        url="https://h.example:443/cb",
        signature=None,
        sha256_signature=without_port,
        keys=["old", "k"],
        account_sid="",
        body=b"x=1",
    ) == Verified("sha256", True)


def test_sha256_header_decides_over_a_matching_sha1_header() -> None:
    params = [("CallSid", "CA1")]
    sha1 = compatibility_signature("k", "https://h/cb", params)
    sha256 = hmac_sha256_signature("k", "https://h/cb", b"CallSid=CA1")
    # both right: SHA-256 is the scheme reported
    assert verify(
        url="https://h/cb",
        signature=sha1,
        sha256_signature=sha256,
        keys=["k"],
        account_sid="",
        body=b"CallSid=CA1",
        params=params,
    ) == Verified("sha256", True)
    # SHA-256 wrong, SHA-1 right: refused, and the message says SHA-1 matched
    with pytest.raises(Sha256Mismatch) as refused:
        verify(
            url="https://h/cb",
            signature=sha1,
            sha256_signature="0" * 64,
            keys=["k"],
            account_sid="",
            body=b"CallSid=CA1",
            params=params,
        )
    assert refused.value.sha1_matched
    assert isinstance(refused.value, SignatureMismatch)
    assert str(refused.value) == (
        "X-SignalWire-Sha256-Signature does not match any configured signing key for this URL "
        "and body (the SHA-1 signature does match: the request was altered) "
        "(check CALLPULSE_SIGNING_KEYS and CALLPULSE_PUBLIC_URL)"
    )
    # the body changed: SHA-256 refuses (SHA-1 over the parameters still matches)
    with pytest.raises(Sha256Mismatch) as altered:
        verify(
            url="https://h/cb",
            signature=sha1,
            sha256_signature=sha256,
            keys=["k"],
            account_sid="",
            body=b"CallSid=CA1&x=",
            params=params,
        )
    assert altered.value.sha1_matched
    # both wrong, or SHA-1 absent
    for sha1_header in ("AAAA", None, ""):
        with pytest.raises(Sha256Mismatch) as both:
            verify(
                url="https://h/cb",
                signature=sha1_header,
                sha256_signature="0" * 64,
                keys=["k"],
                account_sid="",
                body=b"CallSid=CA1",
                params=params,
            )
        assert both.value.sha1_matched is False
        assert str(both.value) == (
            "X-SignalWire-Sha256-Signature does not match any configured signing key for this "
            "URL and body (check CALLPULSE_SIGNING_KEYS and CALLPULSE_PUBLIC_URL)"
        )


def test_sha256_without_keys_names_the_account() -> None:
    with pytest.raises(NoKeyForAccount, match="AC7"):
        verify(
            url="https://h/cb", signature=None, sha256_signature="ab", keys=[], account_sid="AC7"
        )


def test_sha1_schemes_report_what_they_cover() -> None:
    params = [("CallSid", "CA1")]
    form = verify(
        url="https://h/cb",
        signature=compatibility_signature("k", "https://h/cb", params),
        keys=["k"],
        account_sid="",
        body=b"CallSid=CA1",
        params=params,
    )
    assert form == Verified("compatibility", True)
    native = verify(
        url=NATIVE_URL,
        signature=native_signature("k", NATIVE_URL, JSON_BODY),
        keys=["k"],
        account_sid="",
        body=JSON_BODY,
        params=[("event", "call.state")],
    )
    assert native == Verified("native", True)
    hashed = verify(
        url=JSON_URL,
        signature="dfO9ek8mxyFtn2nMz24plPmPfIY=",
        keys=["PSKtest1234567890abcdef"],
        account_sid="",
        body=JSON_BODY,
    )
    assert hashed == Verified("body-sha256", True)
    get = verify(
        url="https://h/cb?CallSid=CA1",
        signature=compatibility_signature("k", "https://h/cb?CallSid=CA1"),
        keys=["k"],
        account_sid="",
    )
    assert get == Verified("compatibility", True)


def test_native_signature_of_an_empty_body_covers_the_whole_request() -> None:
    assert verify(
        url="https://h/cb?CallSid=CA1",
        signature=native_signature("k", "https://h/cb?CallSid=CA1", b""),
        keys=["k"],
        account_sid="",
    ) == Verified("native", True)


def test_a_url_only_signature_of_a_json_body_does_not_cover_it() -> None:
    url = "https://h/cb"
    url_only = compatibility_signature("k", url)
    fields = [("CallSid", "CA1"), ("AudioInMos", "4.5")]  # the gate's JSON fields as strings
    for params in (fields, None, []):
        result = verify(
            url=url,
            signature=url_only,
            keys=["k"],
            account_sid="",
            body=b'{"CallSid":"CA1"}',
            params=params,
        )
        assert result == Verified("url-only", body_covered=False)
        with pytest.raises(UncoveredBody) as refused:
            verify(
                url=url,
                signature=url_only,
                keys=["k"],
                account_sid="",
                body=b'{"CallSid":"CA1"}',
                params=params,
                allow_uncovered=False,
            )
        assert str(refused.value) == (
            "the signature covers the URL only, not the body (JSON without bodySHA256), and "
            "CALLPULSE_REFUSE_UNCOVERED_BODIES refuses such signatures"
        )
    # parameters given without a body are not covered by the URL alone either
    assert verify(
        url=url, signature=url_only, keys=["k"], account_sid="", params=fields
    ) == Verified("url-only", False)
    # every covered scheme passes with allow_uncovered=False
    assert verify(
        url=url,
        signature=compatibility_signature("k", url, fields),
        keys=["k"],
        account_sid="",
        body=b'{"CallSid":"CA1"}',
        params=fields,
        allow_uncovered=False,
    ) == Verified("compatibility", True)
    assert verify(
        url=url, signature=url_only, keys=["k"], account_sid="", allow_uncovered=False
    ) == Verified("compatibility", True)


def test_a_url_only_signature_of_a_port_variant_is_still_url_only() -> None:
    signature = compatibility_signature("k", "https://h.example:443/cb")
    assert verify(
        url="https://h.example/cb",
        signature=signature,
        keys=["j", "k"],
        account_sid="",
        body=b"{}",
        params=[("a", "1")],
    ) == Verified("url-only", False)


def test_a_url_with_bodysha256_needs_the_hash_for_url_only_signatures() -> None:
    # a form body posted to a URL carrying bodySHA256, signed over the URL alone: the hash decides
    url = f"https://h/cb?bodySHA256={body_sha256(b'CallSid=CA1')}"
    signature = compatibility_signature("k", url)
    params = [("CallSid", "CA1")]
    assert verify(
        url=url,
        signature=signature,
        keys=["k"],
        account_sid="",
        body=b"CallSid=CA1",
        params=params,
    ) == Verified("body-sha256", True)
    with pytest.raises(BodyHashMismatch):
        verify(
            url=url,
            signature=signature,
            keys=["k"],
            account_sid="",
            body=b"CallSid=CA2",
            params=[("CallSid", "CA2")],
        )
    # the hash is compared case-insensitively; an empty one matches nothing
    upper = url.replace(body_sha256(b"CallSid=CA1"), body_sha256(b"CallSid=CA1").upper())
    assert verify(
        url=upper,
        signature=compatibility_signature("k", upper),
        keys=["k"],
        account_sid="",
        body=b"CallSid=CA1",
    ) == Verified("body-sha256", True)
    empty = "https://h/cb?bodySHA256="
    with pytest.raises(BodyHashMismatch):
        verify(
            url=empty,
            signature=compatibility_signature("k", empty),
            keys=["k"],
            account_sid="",
            body=b"{}",
        )
    # a wrong signature is a mismatch, whatever the hash
    with pytest.raises(SignatureMismatch):
        verify(url=url, signature="AAAA", keys=["k"], account_sid="", body=b"CallSid=CA2")


def test_a_bodysha256_url_with_an_unparseable_host_still_checks_the_hash() -> None:
    url = f"https://[::1/cb?bodySHA256={body_sha256(b'{}')}#frag"
    signature = compatibility_signature("k", url)
    assert verify(url=url, signature=signature, keys=["k"], account_sid="", body=b"{}") == (
        Verified("body-sha256", True)
    )
    with pytest.raises(BodyHashMismatch):
        verify(url=url, signature=signature, keys=["k"], account_sid="", body=b"{ }")
    # a second "?" or "#", or none at all, in a URL that does not parse
    digest = body_sha256(b"{}")
    for odd in (
        f"https://[::1/cb?bodySHA256={digest}&y=?z",
        f"https://[::1/cb?bodySHA256={digest}",
        f"https://[::1/cb?bodySHA256={digest}#a#b",
    ):
        assert verify(
            url=odd,
            signature=compatibility_signature("k", odd),
            keys=["k"],
            account_sid="",
            body=b"{}",
        ) == Verified("body-sha256", True)


def test_a_forged_signature_is_refused_whatever_the_body() -> None:
    """A body must never stand in for a signature (``if body and ...`` once became ``or``)."""
    params = [("CallSid", "CA1")]
    for body in (b"CallSid=CA1", JSON_BODY, b""):
        for forged in ("AAAA", native_signature("other", "https://h/cb", body), "x" * 40):
            with pytest.raises(SignatureMismatch) as refused:
                verify(
                    url="https://h/cb",
                    signature=forged,
                    keys=["k"],
                    account_sid="",
                    body=body,
                    params=params,
                )
            assert type(refused.value) is SignatureMismatch


def test_error_messages() -> None:
    assert str(MissingSignature()) == (
        "missing X-SignalWire-Signature (or X-Twilio-Signature, "
        "X-SignalWire-Sha256-Signature) header"
    )
    assert str(NoKeyForAccount("AC1")) == (
        "no signing key configured for AccountSid 'AC1' "
        "(add it to CALLPULSE_SIGNING_KEYS as AccountSid=key)"
    )
    assert str(BodyHashMismatch()) == (
        "bodySHA256 in the URL does not match the SHA-256 of the body"
    )
    assert str(SignatureMismatch()) == (
        "signature does not match any configured signing key for this URL "
        "(check CALLPULSE_SIGNING_KEYS and CALLPULSE_PUBLIC_URL)"
    )
    with pytest.raises(MissingSignature):
        verify(url="https://h/cb", signature="", sha256_signature="", keys=["k"], account_sid="")


# --- text that is not UTF-8 ------------------------------------------------------------------


def test_lone_surrogates_never_raise_and_never_match() -> None:
    params = [("CallSid", "\ud800")]
    body = b'{"CallSid":"\\ud800"}'
    signature = compatibility_signature("k", "https://h/cb", params)  # no UnicodeEncodeError
    assert signature != compatibility_signature("k", "https://h/cb", [("CallSid", "\ufffd")])
    for sig, sha256 in (("AAAA", None), ("\udc80", None), (None, "\ud800"), ("x", "\udfff")):
        with pytest.raises(SignatureMismatch):
            verify(
                url="https://h/\ud800",
                signature=sig,
                sha256_signature=sha256,
                keys=["k\udc00"],
                account_sid="",
                body=body,
                params=params,
            )
    native_signature("\ud800", "https://h/\udfff", body)
    hmac_sha256_signature("\ud800", "https://h/\udfff", body)


def test_unsigned_json_with_a_lone_surrogate_is_refused_not_an_error() -> None:
    gate = CallbackGate(SigningKeys.parse("k"), max_body_bytes=10_000)
    raw = RawCallback(
        method="POST",
        url="https://h/cb",
        headers={"content-type": "application/json", "x-signalwire-signature": "AAAA"},
        body=b'{"CallSid":"\\ud800"}',
        body_size=20,
    )
    with pytest.raises(Rejected) as refused:
        gate.accept(raw)
    assert refused.value.status == 403


def test_the_gate_checks_the_sha256_header() -> None:
    from tests.support import ACCOUNT_SID, callback_fields

    fields = callback_fields(AccountSid=ACCOUNT_SID)
    body = urlencode(fields).encode()
    url = "https://h.example/callbacks"
    sha1 = compatibility_signature("k", url, fields.items())
    gate = CallbackGate(SigningKeys.parse("k"), max_body_bytes=10_000)

    def raw(headers: dict[str, str]) -> RawCallback:
        headers = {"content-type": "application/x-www-form-urlencoded", **headers}
        return RawCallback("POST", url, headers, body, len(body))

    gate.accept(raw({"x-signalwire-signature": sha1}))
    gate.accept(raw({SHA256_SIGNATURE_HEADER: hmac_sha256_signature("k", url, body)}))
    with pytest.raises(Rejected) as refused:
        gate.accept(raw({"x-signalwire-signature": sha1, SHA256_SIGNATURE_HEADER: "0" * 64}))
    assert refused.value.status == 403
    # JSON without bodySHA256 signed over the URL alone: accepted for now
    json_raw = RawCallback(
        "POST",
        url,
        {
            "content-type": "application/json",
            "x-signalwire-signature": compatibility_signature("k", url),
        },
        json.dumps(fields).encode(),
        len(json.dumps(fields)),
    )
    gate.accept(json_raw)


# --- URLs and keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "variants"),
    [
        ("http://a.example:80/x", ("http://a.example:80/x", "http://a.example/x")),
        ("https://a.example:80/x", ("https://a.example:80/x",)),
        ("http://a.example:443/x", ("http://a.example:443/x",)),
        ("https://[::1]:443/x", ("https://[::1]:443/x", "https://[::1]/x")),
        ("https://[::1]/x", ("https://[::1]/x", "https://[::1]:443/x")),
        ("https://u:p@a.example:443/x", ("https://u:p@a.example:443/x", "https://u:p@a.example/x")),
        ("ftp://a.example/x", ("ftp://a.example/x",)),
        ("https:///x", ("https:///x",)),
        ("https://a.example:99999/x", ("https://a.example:99999/x",)),
        ("https://a.example:port/x", ("https://a.example:port/x",)),
        ("https://[::1/x", ("https://[::1/x",)),
        ("", ("",)),
        (
            "https://h/x?next=http://y",
            ("https://h/x?next=http://y", "https://h:443/x?next=http://y"),
        ),
        ("https://EXAMPLE.com/x", ("https://EXAMPLE.com/x", "https://EXAMPLE.com:443/x")),
        ("HTTP://h:80?q#f", ("HTTP://h:80?q#f", "HTTP://h?q#f")),
        ("https://h/x?", ("https://h/x?", "https://h:443/x?")),
        ("https://h/x#", ("https://h/x#", "https://h:443/x#")),
        ("https://h:0443/x", ("https://h:0443/x", "https://h/x")),
        ("https://h:/x", ("https://h:/x",)),
        ("https://h:443:1/x", ("https://h:443:1/x",)),
        ("https://h:\u0664\u0664\u0663/x", ("https://h:\u0664\u0664\u0663/x",)),
        ("https://[::1]]:443/x", ("https://[::1]]:443/x",)),
        ("https://[::1]x443/y", ("https://[::1]x443/y",)),
        ("https://a@b@h:443/x", ("https://a@b@h:443/x", "https://a@b@h/x")),
        ("https://:443/x", ("https://:443/x",)),
    ],
)
def test_url_variants_of_odd_urls(url: str, variants: tuple[str, ...]) -> None:
    assert url_variants(url) == variants


def test_signature_over_http_port_80_verifies_without_it() -> None:
    params = [("CallSid", "CA1")]
    signature = compatibility_signature("k", "http://h.example/cb", params)
    verify(
        url="http://h.example:80/cb",
        signature=signature,
        keys=["k"],
        account_sid="",
        params=params,
    )


def test_signing_keys_with_equals_signs_and_blank_items() -> None:
    keys = SigningKeys.parse("AC1=abc==, ,AC2 = k=2=,,shared ,AC1=def")
    assert keys.for_account("AC1") == ("abc==", "def", "shared")
    assert keys.for_account("AC2") == ("k=2=", "shared")
    assert keys.shared == ("shared",)
    assert dict(keys.by_account) == {"AC1": ("abc==", "def"), "AC2": ("k=2=",)}
    assert SigningKeys.parse(",,PSKone,,") == SigningKeys(("PSKone",), {})
    assert bool(SigningKeys(by_account={"AC1": ("k",)}))
    assert bool(SigningKeys(shared=("k",)))
    assert not SigningKeys()
    for bad in ("=k", " = k", "AC1= ", "AC1=k, AC2="):
        with pytest.raises(ValueError) as refused:
            SigningKeys.parse(bad)
        item = bad.split(",")[-1].strip()
        assert str(refused.value) == f"expected AccountSid=key, got {item!r}"
