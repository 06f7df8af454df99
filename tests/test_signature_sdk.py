"""Cross-checks of callpulse.signature against the official validators.

- ``signalwire-sdk`` 3.7.5's ``signalwire/core/security/webhook_validator.py`` (SHA-256, scheme A,
  scheme B, URL-only JSON), loaded by path from ``.venv/signalwire-sdk3`` where scripts/test
  installs it (the ``sdk`` fixture of tests/conftest.py): its import name ``signalwire`` is taken
  by the 2.x client of the test extras;
- twilio's RequestValidator and the ``signalwire`` 2.x RequestValidator.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from signalwire.request_validator import RequestValidator as SignalWireValidator
from twilio.request_validator import RequestValidator as TwilioValidator

from callpulse.signature import (
    SignatureError,
    UncoveredBody,
    Verified,
    compatibility_signature,
    hmac_sha256_signature,
    native_signature,
    verify,
)

CASES = 300


class Case:
    """One random request: key, URL, form parameters and a JSON body of string fields."""

    def __init__(self, rng: random.Random) -> None:
        alphabet = string.ascii_letters + string.digits + " +-_.:/&=?%é€"
        self.key = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(8, 40)))
        scheme = rng.choice(["http", "https"])
        host = rng.choice(["example.com", "calls.example.org", "192.0.2.7"])
        port = rng.choice(["", "", ":8443", ":443" if scheme == "https" else ":80"])
        path = f"/hook/{rng.randint(1, 999)}" + rng.choice(["", "?a=1&b=two", "?x=%C3%A9"])
        self.url = f"{scheme}://{host}{port}{path}"
        self.params = {
            "".join(rng.choices(string.ascii_letters, k=rng.randint(1, 12))): "".join(
                rng.choices(alphabet, k=rng.randint(0, 30))
            )
            for _ in range(rng.randint(1, 12))
        }
        self.form = urlencode(self.params)
        self.json = json.dumps(self.params, ensure_ascii=rng.random() < 0.5)
        self.rng = rng

    def tamper(self, text: str) -> str:
        """``text`` with one character replaced by one no decoder reads as the same."""
        i = self.rng.randrange(len(text))
        return text[:i] + ("Q" if text[i] == "Z" else "Z") + text[i + 1 :]


def _cases(seed: int) -> list[Case]:
    rng = random.Random(seed)
    return [Case(rng) for _ in range(CASES)]


def _sdk_refuses(validate: Any, *args: str) -> bool:
    """The SDK refuses; it raises ValueError for a URL whose port is not a number."""
    try:
        return not validate(*args)
    except ValueError:
        return True


def _refused(**kwargs: Any) -> bool:
    try:
        verify(account_sid="", **kwargs)
    except SignatureError:
        return True
    return False


def test_what_we_sign_the_sdk_accepts(sdk: ModuleType) -> None:
    for case in _cases(20261201):
        key, url, body = case.key, case.url, case.form
        form_sig = compatibility_signature(key, url, case.params.items())
        assert sdk.validate_webhook_signature(key, form_sig, url, body)
        assert sdk.validate_request(key, form_sig, url, case.params)
        assert sdk.validate_request(key, form_sig, url, body)
        native = native_signature(key, url, case.json.encode())
        assert sdk.validate_webhook_signature(key, native, url, case.json)
        sha256 = hmac_sha256_signature(key, url, case.json.encode())
        assert sdk.validate_webhook_signature_sha256(key, sha256, url, case.json)
        hashed_url = _with_body_hash(url, case.json)
        hashed = compatibility_signature(key, hashed_url)
        assert sdk.validate_webhook_signature(key, hashed, hashed_url, case.json)
        # one character changed: the SDK refuses too
        assert not sdk.validate_webhook_signature(key, form_sig, url, case.tamper(body))
        assert not sdk.validate_webhook_signature(key, case.tamper(form_sig), url, body)
        assert _sdk_refuses(sdk.validate_webhook_signature, key, form_sig, case.tamper(url), body)
        assert not sdk.validate_webhook_signature(key, native, url, case.tamper(case.json))
        assert not sdk.validate_webhook_signature_sha256(key, sha256, url, case.tamper(case.json))
        assert not sdk.validate_webhook_signature_sha256(key, case.tamper(sha256), url, case.json)
        assert not sdk.validate_webhook_signature(key, hashed, hashed_url, case.tamper(case.json))


def _with_body_hash(url: str, body: str) -> str:
    digest = hashlib.sha256(body.encode()).hexdigest()
    return url + ("&" if "?" in url else "?") + f"bodySHA256={digest}"


def test_what_the_sdk_signs_we_accept_with_the_right_scheme(sdk: ModuleType) -> None:
    for case in _cases(20261202):
        key, url = case.key, case.url
        form, body = case.form.encode(), case.json.encode()
        pairs = parse_qsl(case.form, keep_blank_values=True)  # what the gate passes as params
        json_params = list(case.params.items())  # the gate's JSON fields as strings
        for candidate in sdk._candidate_urls(url):
            sha256 = sdk._hex_hmac_sha256(key, candidate + case.json)
            assert verify(
                url=url,
                signature=None,
                sha256_signature=sha256,
                keys=[key],
                account_sid="",
                body=body,
                params=json_params,
                allow_uncovered=False,
            ) == Verified("sha256", True)
            assert _refused(
                url=url,
                signature=None,
                sha256_signature=sha256,
                keys=[key],
                body=case.tamper(case.json).encode(),
                params=json_params,
            )
            compat = sdk._b64_hmac_sha1(key, candidate + sdk._sorted_concat_params(pairs))
            assert verify(
                url=url,
                signature=compat,
                keys=[key],
                account_sid="",
                body=form,
                params=pairs,
                allow_uncovered=False,
            ) == Verified("compatibility", True)
            tampered = case.tamper(case.form)
            assert _refused(
                url=url,
                signature=compat,
                keys=[key],
                body=tampered.encode(),
                params=parse_qsl(tampered, keep_blank_values=True),
            )
            assert _refused(
                url=url, signature=case.tamper(compat), keys=[key], body=form, params=pairs
            )
            assert _refused(url=case.tamper(url), signature=compat, keys=[key], params=pairs)
            url_only = sdk._b64_hmac_sha1(key, candidate)
            assert verify(
                url=url,
                signature=url_only,
                keys=[key],
                account_sid="",
                body=body,
                params=json_params,
            ) == Verified("url-only", body_covered=False)
            with pytest.raises(UncoveredBody):
                verify(
                    url=url,
                    signature=url_only,
                    keys=[key],
                    account_sid="",
                    body=body,
                    params=json_params,
                    allow_uncovered=False,
                )
            assert _refused(url=case.tamper(url), signature=url_only, keys=[key], body=body)
            assert sdk.validate_webhook_signature(key, url_only, url, case.json)
        native = sdk._hex_hmac_sha1(key, url + case.json)
        assert verify(
            url=url, signature=native, keys=[key], account_sid="", body=body, params=json_params
        ) == Verified("native", True)
        assert _refused(url=url, signature=native, keys=[key], body=case.tamper(case.json).encode())
        hashed_url = _with_body_hash(url, case.json)
        for candidate in sdk._candidate_urls(hashed_url):
            hashed = sdk._b64_hmac_sha1(key, candidate)
            assert verify(
                url=hashed_url,
                signature=hashed,
                keys=[key],
                account_sid="",
                body=body,
                allow_uncovered=False,
            ) == Verified("body-sha256", True)
            assert _refused(
                url=hashed_url,
                signature=hashed,
                keys=[key],
                body=case.tamper(case.json).encode(),
            )


def test_matches_twilio_and_signalwire_2_validators_on_random_requests(sdk: ModuleType) -> None:
    for case in _cases(20261203):
        key, url = case.key, case.url
        twilio, sw2 = TwilioValidator(key), SignalWireValidator(key)
        ours = compatibility_signature(key, url, case.params.items())
        assert ours == twilio.compute_signature(url, case.params)
        assert ours == sw2.build_signature_with_compatibility(url, case.params)
        assert twilio.validate(url, case.params, ours)
        assert sw2.validate(url, case.params, ours)
        # the 2.x client checks a JSON body's string fields like form parameters
        assert sw2.validate(url, case.json, ours)
        assert verify(
            url=url,
            signature=ours,
            keys=[key],
            account_sid="",
            body=case.json.encode(),
            params=list(case.params.items()),
        ) == Verified("compatibility", True)
        native = native_signature(key, url, case.json.encode())
        assert native == sw2.build_signature(url, case.json)
        assert sw2.validate(url, case.json, native)
        hashed_url = _with_body_hash(url, case.json)
        hashed = compatibility_signature(key, hashed_url)
        assert twilio.validate(hashed_url, case.json, hashed)
        assert not twilio.validate(hashed_url, case.tamper(case.json), hashed)
        # what twilio signs for either spelling of the standard port, we accept (twilio also
        # drops a non-standard one, which neither we nor the current SDK do)
        for variant in sdk._candidate_urls(url):
            theirs = twilio.compute_signature(variant, case.params)
            assert verify(
                url=url,
                signature=theirs,
                keys=[key],
                account_sid="",
                params=list(case.params.items()),
            ) == Verified("compatibility", True)
            theirs_native = sw2.build_signature(variant, case.json)
            assert verify(
                url=url,
                signature=theirs_native,
                keys=[key],
                account_sid="",
                body=case.json.encode(),
            ) == Verified("native", True)
