"""Webhook signatures: pure functions of the URL, the parameters or raw body, and the keys.

Schemes that reach a status callback URL (``verify`` names each in ``Verified.scheme``):
- ``sha256``: hex(HMAC-SHA256(key, url + raw body)) in ``X-SignalWire-Sha256-Signature``, sent
  by SignalWire beside the SHA-1 header; when present it decides;
- ``compatibility`` (Twilio-style): base64(HMAC-SHA1(key, url + name+value of every parameter
  sorted by name));
- ``body-sha256``: the compatibility scheme over the URL alone, where the URL carries
  ``bodySHA256=<hex sha256(body)>`` and the body hash must match too;
- ``native`` (SignalWire RELAY/SWML): hex(HMAC-SHA1(key, url + raw body));
- ``url-only``: the compatibility scheme over the URL alone for a body that is neither signed
  nor hashed (JSON on the compatibility surface): the body is *not* covered by the signature.
Senders are inconsistent about the standard port, so both spellings of the URL are tried.

Text is encoded as UTF-8 with ``surrogatepass``: text that is not valid Unicode (a lone
surrogate from a JSON ``\\ud800`` escape) gets bytes no sender signs, so it never matches and
never raises. ``verify`` raises nothing but ``SignatureError`` subclasses.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

SIGNATURE_HEADERS = ("x-signalwire-signature", "x-twilio-signature")
SHA256_SIGNATURE_HEADER = "x-signalwire-sha256-signature"
REFUSE_UNCOVERED_SETTING = "CALLPULSE_REFUSE_UNCOVERED_BODIES"
_STANDARD_PORTS = {"http": 80, "https": 443}


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def header_value(headers: Mapping[str, str]) -> str | None:
    """The SHA-1 signature from lower-case request headers, whichever alias carries it."""
    return next((headers[name] for name in SIGNATURE_HEADERS if headers.get(name)), None)


def header_values(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``(SHA-1 signature, SHA-256 signature)`` from lower-case request headers; None if absent."""
    return header_value(headers), headers.get(SHA256_SIGNATURE_HEADER) or None


class SignatureError(Exception):
    """The request is not proven to come from the sender."""


class MissingSignature(SignatureError):
    def __init__(self) -> None:
        super().__init__(
            "missing X-SignalWire-Signature (or X-Twilio-Signature, "
            "X-SignalWire-Sha256-Signature) header"
        )


class NoKeyForAccount(SignatureError):
    def __init__(self, account_sid: str) -> None:
        super().__init__(
            f"no signing key configured for AccountSid {account_sid!r} "
            "(add it to CALLPULSE_SIGNING_KEYS as AccountSid=key)"
        )


class BodyHashMismatch(SignatureError):
    def __init__(self) -> None:
        super().__init__("bodySHA256 in the URL does not match the SHA-256 of the body")


class SignatureMismatch(SignatureError):
    def __init__(self) -> None:
        super().__init__(
            "signature does not match any configured signing key for this URL "
            "(check CALLPULSE_SIGNING_KEYS and CALLPULSE_PUBLIC_URL)"
        )


class Sha256Mismatch(SignatureMismatch):
    """The SHA-256 header is present and wrong: it decides, whatever the SHA-1 header says."""

    def __init__(self, sha1_matched: bool) -> None:
        SignatureError.__init__(
            self,
            "X-SignalWire-Sha256-Signature does not match any configured signing key for this "
            "URL and body"
            + (" (the SHA-1 signature does match: the request was altered)" if sha1_matched else "")
            + " (check CALLPULSE_SIGNING_KEYS and CALLPULSE_PUBLIC_URL)",
        )
        self.sha1_matched = sha1_matched


class UncoveredBody(SignatureError):
    def __init__(self) -> None:
        super().__init__(
            "the signature covers the URL only, not the body (JSON without bodySHA256), and "
            f"{REFUSE_UNCOVERED_SETTING} refuses such signatures"
        )


@dataclass(frozen=True, slots=True)
class Verified:
    """How a request was proven: the scheme that matched, and whether it covers the body."""

    scheme: str  # "sha256", "compatibility", "body-sha256", "native" or "url-only"
    body_covered: bool


@dataclass(frozen=True)
class SigningKeys:
    """Keys shared by every project, plus keys per AccountSid (several each, for rotation)."""

    shared: tuple[str, ...] = ()
    by_account: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SigningKeys:
        """``key`` (one key for every project) or ``AccountSid=key,AccountSid=key2,...``.

        A key may itself hold ``=`` (only the first one separates the AccountSid); blank items
        are skipped. Raises ValueError (a configuration error) for ``=key`` or ``AccountSid=``.
        """
        shared: list[str] = []
        by_account: dict[str, list[str]] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            account, sep, key = item.partition("=")
            if not sep:
                shared.append(item)
            elif not account.strip() or not key.strip():
                raise ValueError(f"expected AccountSid=key, got {item!r}")
            else:
                by_account.setdefault(account.strip(), []).append(key.strip())
        return cls(tuple(shared), {a: tuple(k) for a, k in by_account.items()})

    def __bool__(self) -> bool:
        return bool(self.shared or self.by_account)

    def for_account(self, account_sid: str) -> tuple[str, ...]:
        return self.by_account.get(account_sid, ()) + self.shared


def compatibility_signature(key: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    return _sha1_base64(key, url + _joined(params))


def _joined(params: Iterable[tuple[str, str]]) -> str:
    """What the sorted parameters add to the signed message."""
    return "".join(name + value for name, value in sorted(params))


def _sha1_base64(key: str, message: str) -> str:
    digest = hmac.new(_utf8(key), _utf8(message), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def native_signature(key: str, url: str, body: bytes) -> str:
    return hmac.new(_utf8(key), _utf8(url) + body, hashlib.sha1).hexdigest()


def hmac_sha256_signature(key: str, url: str, body: bytes) -> str:
    return hmac.new(_utf8(key), _utf8(url) + body, hashlib.sha256).hexdigest()


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _url_variants(url: str) -> tuple[str, ...]:
    """The URL as given, then with the standard port toggled (added if absent, else removed).

    Only the port changes: the rest of the URL is kept character for character (no
    normalisation), so two different URLs never share a variant.
    """
    scheme, sep, rest = url.partition("://")
    standard = _STANDARD_PORTS.get(scheme.lower())
    if standard is None or not sep:
        return (url,)
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # an IPv6 literal
        bracket = hostport.find("]") + 1
        host, after = hostport[:bracket], hostport[bracket:]
        if not bracket or (after and not after.startswith(":")):
            return (url,)
        port = after[1:] if after else None
    else:
        host, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
    if not host:
        return (url,)
    head = f"{scheme}://{userinfo}{at}{host}"
    if port is None:
        return (url, f"{head}:{standard}{tail}")
    if port.isascii() and port.isdigit() and int(port) == standard:
        return (url, head + tail)
    return (url,)


# a receiver is called at a handful of URLs, over and over
url_variants = functools.lru_cache(maxsize=256)(_url_variants)


def _expected_body_hash(url: str) -> str | None:
    """The ``bodySHA256`` query parameter of ``url``, if any."""
    try:
        query = urlsplit(url).query
    except ValueError:
        query = url.partition("#")[0].partition("?")[2]
    return dict(parse_qsl(query, keep_blank_values=True)).get("bodySHA256")


def _matches(expected: str, signature: str) -> bool:
    return hmac.compare_digest(_utf8(expected), _utf8(signature))


def _verify_sha1(
    url: str,
    signature: str,
    keys: Sequence[str],
    body: bytes,
    params: Sequence[tuple[str, str]] | None,
) -> Verified:
    url_alone = False
    joined = _joined(params or ())
    for candidate in url_variants(url):
        for key in keys:
            # parameters that add nothing to the message ([("", "")]) do not make it cover more
            if joined and _matches(_sha1_base64(key, candidate + joined), signature):
                return Verified("compatibility", body_covered=True)
            if _matches(native_signature(key, candidate, body), signature):
                return Verified("native", body_covered=True)
            url_alone = url_alone or _matches(_sha1_base64(key, candidate), signature)
    if not url_alone:
        raise SignatureMismatch()
    expected_hash = _expected_body_hash(url)
    if expected_hash is not None:
        if not _matches(body_sha256(body), expected_hash.lower()):
            raise BodyHashMismatch()
        return Verified("body-sha256", body_covered=True)
    if not body and not params:  # a GET, or an empty POST: the URL is the whole request
        return Verified("compatibility", body_covered=True)
    return Verified("url-only", body_covered=False)


def _verify_sha256(
    url: str,
    signature: str,
    sha1_signature: str | None,
    keys: Sequence[str],
    account_sid: str,
    body: bytes,
    params: Sequence[tuple[str, str]] | None,
) -> Verified:
    if not keys:
        raise NoKeyForAccount(account_sid)
    for candidate in url_variants(url):
        for key in keys:
            if _matches(hmac_sha256_signature(key, candidate, body), signature):
                return Verified("sha256", body_covered=True)
    sha1_matched = False
    if sha1_signature:
        try:
            _verify_sha1(url, sha1_signature, keys, body, params)
            sha1_matched = True
        except SignatureError:
            pass
    raise Sha256Mismatch(sha1_matched)


def verify(
    *,
    url: str,
    signature: str | None,
    keys: Sequence[str],
    account_sid: str,
    body: bytes = b"",
    params: Sequence[tuple[str, str]] | None = None,
    sha256_signature: str | None = None,
    allow_uncovered: bool = True,
) -> Verified:
    """Return how the request is proven; raise a SignatureError subclass unless it is.

    ``signature`` is the SHA-1 header (``X-SignalWire-Signature`` or ``X-Twilio-Signature``),
    ``sha256_signature`` the ``X-SignalWire-Sha256-Signature`` header (see ``header_values``).
    ``params`` are the signed form parameters (None for a GET, whose parameters are part of the
    URL, or a JSON body with ``bodySHA256`` in the URL); ``body`` is the raw body.

    When the SHA-256 header is present it decides: a wrong one is refused with Sha256Mismatch
    (a 403) even if the SHA-1 signature matches. The sender computes both over the same URL and
    body with the same key, so a disagreement means the request was altered on the way, or the
    sender signed another URL or body than the one checked; accepting it on SHA-1 would hide
    both. It costs no security that a request stripped of the header is checked on SHA-1: that
    is what happens for every sender that does not send it. The error says whether the SHA-1
    signature matched, to tell a tampered request from a misconfiguration.

    A SHA-1 signature over the URL alone proves nothing about a non-empty body unless the URL
    carries its ``bodySHA256``: such a request verifies as ``url-only`` with
    ``body_covered=False`` (anyone holding one signed request to the URL can send any body with
    it), or raises UncoveredBody when ``allow_uncovered`` is False.
    """
    if sha256_signature:
        return _verify_sha256(url, sha256_signature, signature, keys, account_sid, body, params)
    if not signature:
        raise MissingSignature()
    if not keys:
        raise NoKeyForAccount(account_sid)
    verified = _verify_sha1(url, signature, keys, body, params)
    if not verified.body_covered and not allow_uncovered:
        raise UncoveredBody()
    return verified
