"""Webhook signatures: pure functions of the URL, the parameters or raw body, and the keys.

Two schemes reach a status callback URL:
- compatibility (Twilio-style): base64(HMAC-SHA1(key, url + name+value of every parameter sorted
  by name)); for a JSON body the URL carries ``bodySHA256=<hex sha256(body)>`` and the signature
  covers the URL alone;
- native (SignalWire RELAY/SWML): hex(HMAC-SHA1(key, url + raw body)).
Senders are inconsistent about the standard port, so both spellings of the URL are tried.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SIGNATURE_HEADERS = ("x-signalwire-signature", "x-twilio-signature")
_STANDARD_PORTS = {"http": 80, "https": 443}


def header_value(headers: Mapping[str, str]) -> str | None:
    """The signature from lower-case request headers, whichever alias carries it."""
    return next((headers[name] for name in SIGNATURE_HEADERS if headers.get(name)), None)


class SignatureError(Exception):
    """The request is not proven to come from the sender."""


class MissingSignature(SignatureError):
    def __init__(self) -> None:
        super().__init__("missing X-SignalWire-Signature (or X-Twilio-Signature) header")


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


@dataclass(frozen=True)
class SigningKeys:
    """Keys shared by every project, plus keys per AccountSid (several each, for rotation)."""

    shared: tuple[str, ...] = ()
    by_account: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SigningKeys:
        """``key`` (one key for every project) or ``AccountSid=key,AccountSid=key2,...``."""
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
    message = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def native_signature(key: str, url: str, body: bytes) -> str:
    return hmac.new(key.encode(), url.encode() + body, hashlib.sha1).hexdigest()


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@functools.lru_cache(maxsize=256)  # a receiver is called at a handful of URLs, over and over
def url_variants(url: str) -> tuple[str, ...]:
    """The URL as given, then with the standard port toggled (added if absent, else removed)."""
    parts = urlsplit(url)
    standard = _STANDARD_PORTS.get(parts.scheme)
    if standard is None or parts.hostname is None:
        return (url,)
    host = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    if parts.port is None:
        other = parts._replace(netloc=f"{host}:{standard}")
    elif parts.port == standard:
        other = parts._replace(netloc=host)
    else:
        return (url,)
    return (url, urlunsplit(other))


def _matches(expected: str, signature: str) -> bool:
    return hmac.compare_digest(expected.encode(), signature.encode())


def verify(
    *,
    url: str,
    signature: str | None,
    keys: Sequence[str],
    account_sid: str,
    body: bytes = b"",
    params: Sequence[tuple[str, str]] | None = None,
) -> None:
    """Raise a SignatureError unless ``signature`` proves the request; return None otherwise.

    ``params`` are the signed form parameters (None for a JSON body or a GET, whose parameters
    are part of the URL); ``body`` is the raw body for the JSON and native schemes.
    """
    if not signature:
        raise MissingSignature()
    if not keys:
        raise NoKeyForAccount(account_sid)
    expected_hash = (
        dict(parse_qsl(urlsplit(url).query)).get("bodySHA256") if params is None else None
    )
    if expected_hash is not None:
        if not hmac.compare_digest(body_sha256(body).encode(), expected_hash.lower().encode()):
            raise BodyHashMismatch()
        body = b""
    signed_params = params or ()
    for candidate in url_variants(url):
        for key in keys:
            if _matches(compatibility_signature(key, candidate, signed_params), signature):
                return
            if body and _matches(native_signature(key, candidate, body), signature):
                return
    raise SignatureMismatch()
