"""The gate: one request as it arrived -> a call to store, or a rejection naming each bad field.

Pure: no I/O, no metrics; the pipeline counts and quarantines what the gate rejects.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from callpulse import signature
from callpulse.callback import (
    CallbackError,
    Fields,
    Problem,
    decode_form,
    decode_json,
    fields_from_pairs,
    parse_callback,
)
from callpulse.config import Settings
from callpulse.signature import SigningKeys
from callpulse.store.base import CallWrite

UNCOVERED_WHY = (
    "body not covered by the signature (it signs the URL only): anyone holding one signed URL "
    "could send any body; CALLPULSE_REFUSE_UNCOVERED_BODIES=true refuses such callbacks"
)


@dataclass(frozen=True, slots=True)
class RawCallback:
    """One request as it reached the endpoint; also what a quarantine entry replays."""

    method: str
    url: str  # the URL the sender called (public base + path + query)
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    body_size: int  # before truncation
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def truncated(self) -> bool:
        return self.body_size > len(self.body)


class Rejected(Exception):
    """Why a request is refused: HTTP status, quarantine reason, and each bad field."""

    def __init__(self, status: int, reason: str, errors: dict[str, str], message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.errors = status, reason, errors


def _unsupported(content_type: str) -> Rejected:
    return Rejected(
        415,
        "unsupported",
        {
            "Content-Type": f"{content_type!r} is not accepted; send "
            "application/x-www-form-urlencoded or application/json"
        },
        "unsupported media type",
    )


@dataclass(frozen=True)
class CallbackGate:
    """What a request must pass to become a call: size, body format, signature, fields."""

    keys: SigningKeys
    max_body_bytes: int
    verify_signatures: bool = True
    refuse_uncovered: bool = False  # CALLPULSE_REFUSE_UNCOVERED_BODIES

    def accept(self, raw: RawCallback) -> CallWrite:
        if raw.truncated or raw.body_size > self.max_body_bytes:
            raise Rejected(
                413,
                "too_large",
                {"body": f"{raw.body_size} bytes is over the {self.max_body_bytes}-byte limit"},
                "request body too large",
            )
        fields, signed_params = self._fields(raw)
        verified = None
        if self.verify_signatures:
            account = fields.get("AccountSid")
            account_sid = account if isinstance(account, str) else ""
            sha1_signature, sha256_signature = signature.header_values(raw.headers)
            try:
                verified = signature.verify(
                    url=raw.url,
                    signature=sha1_signature,
                    keys=self.keys.for_account(account_sid),
                    account_sid=account_sid,
                    body=raw.body,
                    params=signed_params,
                    sha256_signature=sha256_signature,
                    allow_uncovered=not self.refuse_uncovered,
                )
            except signature.SignatureError as exc:
                raise Rejected(
                    403, "signature", {"X-SignalWire-Signature": str(exc)}, "signature check failed"
                ) from None
        try:
            record = parse_callback(fields, raw.received_at)
        except CallbackError as exc:
            raise Rejected(400, "invalid", exc.errors, "invalid callback") from None
        if verified is not None and not verified.body_covered:
            # The provider's word for the URL, not for what the body says: stored (the SDK
            # accepts it too), and marked so it can be told apart and counted.
            uncovered = Problem("signature", verified.scheme, UNCOVERED_WHY)
            record = dataclasses.replace(record, problems=(*record.problems, uncovered))
        return CallWrite(record, raw.received_at)

    @staticmethod
    def _fields(raw: RawCallback) -> tuple[Fields, list[tuple[str, str]] | None]:
        """The callback fields and the parameters the compatibility signature covers."""
        try:
            if raw.method == "GET":
                query = raw.url.partition("?")[2]
                return fields_from_pairs(parse_qsl(query, keep_blank_values=True)), None
            content_type = raw.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "application/x-www-form-urlencoded":
                pairs = decode_form(raw.body)
                return fields_from_pairs(pairs), pairs
            if content_type == "application/json" or content_type.endswith("+json"):
                fields = decode_json(raw.body)
                if "bodySHA256=" in raw.url:
                    return fields, None
                return fields, [
                    (k, v if isinstance(v, str) else json.dumps(v)) for k, v in fields.items()
                ]
        except CallbackError as exc:
            raise Rejected(400, "invalid", exc.errors, "invalid callback") from None
        raise _unsupported(content_type)


def gate_for(settings: Settings, allow_unsigned: bool = False) -> CallbackGate:
    """Signatures are checked whenever keys are configured; unsigned only when allowed."""
    return CallbackGate(
        settings.signing_keys,
        settings.max_body_bytes,
        verify_signatures=bool(settings.signing_keys) or not allow_unsigned,
        refuse_uncovered=settings.refuse_uncovered_bodies,
    )
