"""Properties of the verifier over arbitrary URLs, headers, bodies, parameters and keys."""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from callpulse.signature import (
    SignatureError,
    SigningKeys,
    Verified,
    compatibility_signature,
    header_values,
    hmac_sha256_signature,
    native_signature,
    url_variants,
    verify,
)

# fewer examples per mutant when mutmut runs the tests (docs/reliability.md, Signatures)
EXAMPLES = 40 if os.environ.get("MUTANT_UNDER_TEST") else 300
PROFILE = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

texts = st.text(max_size=40)  # any code points, lone surrogates included
pairs = st.lists(st.tuples(texts, texts), max_size=6)
hosts = st.sampled_from(["h.example", "192.0.2.1", "[::1]", "u:p@h.example", "h.example:8443"])
ports = st.sampled_from(["", "", ":443", ":80", ":0443"])
urls = st.one_of(
    texts,
    st.builds(
        lambda scheme, host, port, path: (
            f"{scheme}://{host}{port if ':' not in host else ''}{path}"
        ),
        st.sampled_from(["http", "https", "HTTPS", "ftp"]),
        hosts,
        ports,
        texts,
    ),
)
SCHEMES = ["sha256", "compatibility", "native", "url-only", "body-sha256"]


@PROFILE
@given(
    url=urls,
    headers=st.dictionaries(texts, texts, max_size=4)
    | st.fixed_dictionaries(
        {"x-signalwire-signature": texts, "x-signalwire-sha256-signature": texts}
    ),
    body=st.binary(max_size=80),
    params=st.none() | pairs,
    keys=st.lists(texts, max_size=3),
    account_sid=texts,
    allow_uncovered=st.booleans(),
)
def test_nothing_but_signature_errors_escape(
    url: str,
    headers: dict[str, str],
    body: bytes,
    params: list[tuple[str, str]] | None,
    keys: list[str],
    account_sid: str,
    allow_uncovered: bool,
) -> None:
    sha1, sha256 = header_values(headers)
    try:
        result = verify(
            url=url,
            signature=sha1,
            sha256_signature=sha256,
            keys=keys,
            account_sid=account_sid,
            body=body,
            params=params,
            allow_uncovered=allow_uncovered,
        )
    except SignatureError:
        return
    assert isinstance(result, Verified)
    assert result.body_covered or allow_uncovered


@PROFILE
@given(url=urls, key=texts, body=st.binary(max_size=80), params=pairs)
def test_the_signers_never_raise(
    url: str, key: str, body: bytes, params: list[tuple[str, str]]
) -> None:
    variants = url_variants(url)
    assert variants[0] == url and 1 <= len(variants) <= 2
    assert len(set(variants)) == len(variants)
    if len(variants) == 2 and len(variants[1]) > len(url):  # adding the port, then removing it
        assert url_variants(variants[1]) == (variants[1], url)
    compatibility_signature(key, url, params)
    native_signature(key, url, body)
    hmac_sha256_signature(key, url, body)


@PROFILE
@given(text=texts)
def test_parsing_keys_raises_nothing_but_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        SigningKeys.parse(text)


def _sign(scheme: str, key: str, url: str, body: bytes, params: list[tuple[str, str]]) -> Any:
    """The verify() arguments of a request signed with ``scheme``."""
    if scheme == "sha256":
        return {"signature": None, "sha256_signature": hmac_sha256_signature(key, url, body)}
    if scheme == "compatibility":
        return {"signature": compatibility_signature(key, url, params), "params": params}
    if scheme == "native":
        return {"signature": native_signature(key, url, body)}
    return {"signature": compatibility_signature(key, url), "params": params}


def _url_for(scheme: str, url: str, body: bytes) -> str:
    if scheme == "body-sha256":
        url = url.partition("#")[0]
        return url + ("&" if "?" in url else "?") + f"bodySHA256={hashlib.sha256(body).hexdigest()}"
    return url


def _concat(params: list[tuple[str, str]]) -> str:
    return "".join(name + value for name, value in sorted(params))


def _change(text: str, index: int, replacement: str) -> str:
    i = index % len(text)
    assume(text[i] != replacement)
    return text[:i] + replacement + text[i + 1 :]


def signed_requests(schemes: list[str] = SCHEMES) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "scheme": st.sampled_from(schemes),
            "url": urls.filter(lambda u: "bodySHA" not in u),
            "keys": st.lists(texts, min_size=1, max_size=3),
            "key_index": st.integers(0, 2),
            "body": st.binary(min_size=1, max_size=80),
            "params": pairs.filter(lambda p: any(name or value for name, value in p)),
            "variant": st.integers(0, 1),
        }
    )


def _request(case: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """verify() arguments for ``case``, the URL it was signed at, and the key."""
    scheme, body, params = case["scheme"], case["body"], case["params"]
    url = _url_for(scheme, case["url"], body)
    variants = url_variants(url)
    signed_url = variants[case["variant"] % len(variants)]
    key = case["keys"][case["key_index"] % len(case["keys"])]
    request = {"url": url, "keys": case["keys"], "account_sid": "", "body": body}
    request.update(_sign(scheme, key, signed_url, body, params))
    if scheme == "body-sha256":
        request["params"] = None
    return request, signed_url, key


@PROFILE
@given(case=signed_requests())
def test_a_valid_signature_of_any_scheme_verifies(case: dict[str, Any]) -> None:
    request, _, _ = _request(case)
    result = verify(**request)
    assert result == Verified(case["scheme"], body_covered=case["scheme"] != "url-only")


@PROFILE
@given(case=signed_requests(), index=st.integers(0, 10_000), byte=st.integers(0, 255))
def test_a_changed_body_byte_fails_unless_the_body_is_not_covered(
    case: dict[str, Any], index: int, byte: int
) -> None:
    request, _, _ = _request(case)
    body = request["body"]
    i = index % len(body)
    assume(body[i] != byte)
    request["body"] = body[:i] + bytes([byte]) + body[i + 1 :]
    if case["scheme"] in ("compatibility", "url-only"):  # the parameters are what is signed
        assert verify(**request).scheme == case["scheme"]
        return
    with pytest.raises(SignatureError):
        verify(**request)


@PROFILE
@given(case=signed_requests(), index=st.integers(0, 10_000), char=st.characters())
def test_a_changed_url_or_signature_character_fails(
    case: dict[str, Any], index: int, char: str
) -> None:
    request, _, _ = _request(case)
    assume(request["url"])
    changed = dict(request, url=_change(request["url"], index, char))
    with pytest.raises(SignatureError):
        verify(**changed)
    name = "sha256_signature" if case["scheme"] == "sha256" else "signature"
    changed = dict(request, **{name: _change(request[name], index, char)})
    with pytest.raises(SignatureError):
        verify(**changed)


@PROFILE
@given(case=signed_requests(["compatibility"]), index=st.integers(0, 10_000), char=st.characters())
def test_a_changed_parameter_fails_the_compatibility_scheme(
    case: dict[str, Any], index: int, char: str
) -> None:
    request, _, _ = _request(case)
    params = list(request["params"])
    name, value = params[index % len(params)]
    params[index % len(params)] = (name, _change(value, index, char) if value else char)
    assume(_concat(params) != _concat(request["params"]))  # ("ab", "c") reads as ("a", "bc")
    with pytest.raises(SignatureError):
        verify(**dict(request, params=params))
