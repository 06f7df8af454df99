"""Requests as they reach the gate, signed with the official validators."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from signalwire.request_validator import RequestValidator as SignalWireValidator
from twilio.request_validator import RequestValidator as TwilioValidator

from callpulse.ingest.gate import RawCallback
from tests.support import SIGNING_KEY

URL = "https://calls.example.com/callbacks/call-status"
RECEIVED = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
FORM = "application/x-www-form-urlencoded"


def raw(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    url: str = URL,
    body_size: int | None = None,
) -> RawCallback:
    return RawCallback(
        method=method,
        url=url,
        headers=dict(headers or {}),
        body=body,
        body_size=len(body) if body_size is None else body_size,
        received_at=RECEIVED,
    )


def form(
    fields: Mapping[str, str],
    *,
    key: str = SIGNING_KEY,
    url: str = URL,
    header: str = "x-twilio-signature",
) -> RawCallback:
    """A form callback signed as twilio's validator signs it (SHA-1, URL + sorted parameters)."""
    signature = TwilioValidator(key).compute_signature(url, dict(fields))
    return raw(urlencode(fields).encode(), {"content-type": FORM, header: signature}, url=url)


def json_signed_as_form(
    fields: Mapping[str, Any], *, key: str = SIGNING_KEY, url: str = URL
) -> RawCallback:
    """A JSON callback whose fields are signed like form parameters, the ``signalwire`` 2.x
    validator's fallback for JSON; a value that is not text is signed as its JSON text (the
    receiver's rule: the validators take text only)."""
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
    signature = SignalWireValidator(key).build_signature_with_compatibility(url, params)
    return raw(
        json.dumps(dict(fields)).encode(),
        {"content-type": "application/json", "x-signalwire-signature": signature},
        url=url,
    )
