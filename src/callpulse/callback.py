"""The inbound call status callback: raw fields in, a validated CallRecord out."""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

REQUIRED_FIELDS = (
    "CallSid",
    "AccountSid",
    "From",
    "To",
    "Timestamp",
    "CallStatus",
    "CallDuration",
    "AudioInMos",
)
CALL_STATUSES = frozenset(
    {
        "completed",
        "failed",
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "answered",
        "busy",
        "no-answer",
        "canceled",
    }
)
WITHHELD = "withheld"
WITHHELD_CALLER_IDS = frozenset(
    {"", "anonymous", "restricted", "unknown", "private", "unavailable", "withheld"}
)
MAX_DURATION_S = 7 * 24 * 3600  # anything longer is a sender bug that would poison averages
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_DIGITS = re.compile(r"[0-9]{1,9}")

Fields = dict[str, Any]


class CallbackError(ValueError):
    """The payload is not a valid status callback; ``errors`` maps each bad field to why."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {why}" for name, why in self.errors.items()))


@dataclass(frozen=True, slots=True)
class CallRecord:
    account_sid: str
    call_sid: str
    from_number: str  # E.164, or WITHHELD for a withheld caller id
    to_number: str
    started_at: datetime  # UTC
    status: str
    duration_s: int
    mos: float | None  # None only for calls recovered from the Calls API without a MOS
    extra: dict[str, Any] = field(default_factory=dict)


def decode_form(body: bytes) -> list[tuple[str, str]]:
    """``parse_qsl(..., keep_blank_values=True)``, without unquoting what needs none."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CallbackError({"body": "form body is not valid UTF-8"}) from None
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name, value = unquote_plus(name), unquote_plus(value)
        pairs.append((name, value))
    return pairs


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def decode_json(body: bytes) -> Fields:
    try:
        data = json.loads(body, parse_constant=_no_constant)
    # ValueError covers JSONDecodeError, UnicodeDecodeError, NaN/Infinity and integers over
    # Python's digit limit; RecursionError a deeply nested body. None of them may become a 500.
    except (ValueError, RecursionError) as exc:
        raise CallbackError({"body": f"invalid JSON ({exc})"}) from None
    if not isinstance(data, dict):
        raise CallbackError({"body": "JSON body must be an object of callback fields"})
    return data


def fields_from_pairs(pairs: list[tuple[str, str]]) -> Fields:
    fields: Fields = {}
    duplicated = []
    for name, value in pairs:
        if name in fields and name in REQUIRED_FIELDS:
            duplicated.append(name)
        fields[name] = value
    if duplicated:
        raise CallbackError({name: "given more than once" for name in duplicated})
    return fields


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _sid(value: Any) -> str:
    text = _text(value)
    if text is None or not _SID.fullmatch(text):
        raise ValueError("must be 1-64 letters, digits, '-' or '_'")
    return text


def _number(value: Any) -> str:
    text = _text(value)
    if text is None or not _E164.fullmatch(text):
        raise ValueError(
            f"must be an E.164 number: '+' then up to 15 digits, e.g. +15551234567; got {value!r}"
        )
    return text


def _caller(value: Any) -> str:
    text = _text(value)
    if text is not None and text.strip().lower() in WITHHELD_CALLER_IDS:
        return WITHHELD
    return _number(value)


def _timestamp(value: Any) -> datetime:
    text = _text(value) or ""
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        parsed = _iso_time(text)
    if parsed.tzinfo is None:  # RFC 2822 "-0000": time in UTC, origin zone unknown
        parsed = parsed.replace(tzinfo=UTC)
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is past datetime.max in UTC
        raise ValueError(f"is out of range in UTC; got {text!r}") from None
    # Whole milliseconds, what every backend stores: bucket and cursor arithmetic stays exact.
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _iso_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            "must be an RFC 2822 date such as 'Thu, 04 Apr 2024 18:32:15 +0000' "
            f"(or ISO 8601 with an offset); got {text!r}"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"ISO 8601 time needs a UTC offset such as +00:00; got {text!r}")
    return parsed


def _status(value: Any) -> str:
    if value not in CALL_STATUSES:
        raise ValueError(f"must be one of {', '.join(sorted(CALL_STATUSES))}; got {value!r}")
    return str(value)


def _duration(value: Any) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        seconds = int(value)
    else:
        raise ValueError(f"must be a whole number of seconds such as '142'; got {value!r}")
    if not 0 <= seconds <= MAX_DURATION_S:
        raise ValueError(f"must be between 0 and {MAX_DURATION_S} seconds; got {seconds}")
    return seconds


def _mos(value: Any) -> float:
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError
        mos = float(value)
    except (ValueError, OverflowError):  # OverflowError: a JSON integer too big for a float
        raise ValueError(f"must be a number from 1 to 5 such as '4.5'; got {value!r}") from None
    if math.isnan(mos) or not 1.0 <= mos <= 5.0:
        raise ValueError(f"must be a number from 1 to 5 such as '4.5'; got {value!r}")
    return mos


_FIELD_PARSERS = {
    "CallSid": _sid,
    "AccountSid": _sid,
    "From": _caller,
    "To": _number,
    "Timestamp": _timestamp,
    "CallStatus": _status,
    "CallDuration": _duration,
    "AudioInMos": _mos,
}


def parse_callback(fields: Mapping[str, Any], may_lack: frozenset[str] = frozenset()) -> CallRecord:
    """Validate every documented field at once, so the error names all that is wrong.

    ``may_lack`` names fields a source other than the callback may not have (None then)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, parse in _FIELD_PARSERS.items():
        if name not in fields:
            if name in may_lack:
                values[name] = None
            else:
                errors[name] = "required field is missing"
            continue
        try:
            values[name] = parse(fields[name])
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise CallbackError(errors)
    return CallRecord(
        account_sid=values["AccountSid"],
        call_sid=values["CallSid"],
        from_number=values["From"],
        to_number=values["To"],
        started_at=values["Timestamp"],
        status=values["CallStatus"],
        duration_s=values["CallDuration"],
        mos=values["AudioInMos"],
        extra={k: v for k, v in fields.items() if k not in _FIELD_PARSERS},
    )


def to_fields(record: CallRecord) -> dict[str, str]:
    """The record as the sender would post it (used by the simulator and tests)."""
    fields = {
        "CallSid": record.call_sid,
        "AccountSid": record.account_sid,
        "From": "anonymous" if record.from_number == WITHHELD else record.from_number,
        "To": record.to_number,
        "Timestamp": email.utils.format_datetime(record.started_at),
        "CallStatus": record.status,
        "CallDuration": str(record.duration_s),
        "AudioInMos": "" if record.mos is None else repr(record.mos),
    }
    fields.update({k: str(v) for k, v in record.extra.items()})
    return fields
