"""The inbound call status callback: raw fields in, a CallRecord and its data problems out.

A callback whose signature verified is the provider's word that a call happened, so it is
always stored: only a call that cannot be keyed (CallSid, AccountSid) is refused. Every other
field is parsed when it can be and otherwise left empty, with a ``Problem`` that keeps the raw
value and says why — never an invented value (no MOS 0 for "no score", no duration 0 for
"absent").
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from callpulse import text, timestamps

DOCUMENTED_FIELDS = (
    "CallSid",
    "AccountSid",
    "From",
    "To",
    "Timestamp",
    "CallStatus",
    "CallDuration",
    "AudioInMos",
)
KEY_FIELDS = ("CallSid", "AccountSid")
KNOWN_STATUSES = frozenset(
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
UNKNOWN_STATUS = "unknown"
WITHHELD = "withheld"
WITHHELD_CALLER_IDS = frozenset(
    {"", "anonymous", "restricted", "unknown", "private", "unavailable", "withheld"}
)
MAX_JSON_DEPTH = 64  # a callback is flat; anything this deep is not one
MAX_DURATION_S = 7 * 24 * 3600  # anything longer is a sender bug that would poison averages
_SID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_STATUS = re.compile(r"[a-z][a-z_-]{0,31}")
_WHOLE = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[0-9]{1,9}\.[0-9]{0,6}")
Fields = dict[str, Any]


class CallbackError(ValueError):
    """The payload is not a callback that can be stored; ``errors`` maps each field to why."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {why}" for name, why in self.errors.items()))


@dataclass(frozen=True, slots=True)
class Problem:
    """A field that could not be taken as sent: its raw value (as text) and why."""

    field: str
    value: str
    why: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "value": self.value, "why": self.why}


@dataclass(frozen=True, slots=True)
class CallRecord:
    account_sid: str
    call_sid: str
    from_number: str  # E.164, SIP URI, client:name, WITHHELD, or anything else as sent
    to_number: str
    started_at: datetime  # UTC; the time of receipt when the Timestamp could not be used
    status: str
    duration_s: int | None  # None: not sent (a failed call) or not usable (a Problem says)
    mos: float | None  # None: no score (a call without audio, or a Problem says why)
    extra: dict[str, Any] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def problem(self, name: str) -> Problem | None:
        return next((p for p in self.problems if p.field == name), None)


def decode_form(body: bytes) -> list[tuple[str, str]]:
    """``parse_qsl(..., keep_blank_values=True)``, without unquoting what needs none."""
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CallbackError({"body": "form body is not valid UTF-8"}) from None
    pairs = []
    for part in decoded.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_form(name)
        if "%" in value or "+" in value:
            value = unquote_form(value)
        pairs.append((name, value))
    return pairs


def unquote_form(value: str) -> str:
    """``unquote_plus`` of text decoded from UTF-8 (so it encodes back), in one pass over the
    bytes rather than one per run of escapes: every callback has a few such values."""
    value = value.replace("+", " ")
    if "%" not in value:
        return value
    return unquote_to_bytes(value).decode("utf-8", "replace")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return fields_from_pairs(pairs)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # 1e400: valid JSON, but no float holds it, and no store takes inf
        raise ValueError(f"number {literal[:40]} is out of range")
    return value


def _depth(data: Any) -> int:
    """How deeply ``data`` nests lists and objects (a flat callback object is 1)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level)
            stack.extend((item, level + 1) for item in value)
    return deepest


def decode_json(body: bytes) -> Fields:
    try:
        data = json.loads(
            body,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    # ValueError covers JSONDecodeError, UnicodeDecodeError, NaN/Infinity, floats out of range
    # and integers over Python's digit limit; RecursionError a deeply nested body. None of them
    # may become a 500.
    except CallbackError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CallbackError({"body": f"invalid JSON ({exc})"}) from None
    if not isinstance(data, dict):
        raise CallbackError({"body": "JSON body must be an object of callback fields"})
    # Everything after this (cleaning text, storing, exporting) walks the value recursively.
    if _depth(data) > MAX_JSON_DEPTH:
        raise CallbackError({"body": f"JSON nested deeper than {MAX_JSON_DEPTH} levels"})
    return data


def fields_from_pairs(pairs: list[tuple[str, Any]]) -> Fields:
    """Form, query or JSON pairs as fields; a documented field given twice is ambiguous (which
    one did the sender mean?), the same in every encoding."""
    fields: Fields = {}
    duplicated = []
    for name, value in pairs:
        if name in fields and name in DOCUMENTED_FIELDS:
            duplicated.append(name)
        fields[name] = value
    if duplicated:
        raise CallbackError({name: "given more than once" for name in duplicated})
    return fields


def raw_text(value: Any) -> str:
    """A field's raw value as text, for a Problem: strings as they are, the rest as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# -- field parsers: each returns (value, why-not or None) ----------------------------------


def _sid(value: Any) -> str:
    if not isinstance(value, str) or not _SID.fullmatch(value):
        raise ValueError("must be 1-64 letters, digits, '-' or '_'")
    return value


def party(value: Any, name: str) -> tuple[str, str | None]:
    """A caller or called party as stored: E.164, SIP URI, client identifier, WITHHELD for a
    withheld caller id, or any other text as sent (with a problem)."""
    if value is None:
        return (WITHHELD, f"{name} is missing") if name == "From" else ("", "missing")
    if not isinstance(value, str):
        return (raw_text(value), "not text")
    if name == "From" and value.strip().lower() in WITHHELD_CALLER_IDS:
        return WITHHELD, None
    if not value.strip():
        return "", "empty"
    if _E164.fullmatch(value) or value.lower().startswith(("sip:", "sips:", "client:")):
        return value, None
    hint = " (a '+' sent unencoded in a form body arrives as a space)" if value[0] == " " else ""
    return value, f"not an E.164 number, SIP URI or client identifier{hint}"


def _status(value: Any) -> tuple[str, str | None]:
    if value is None or value == "":
        return UNKNOWN_STATUS, "missing: stored as unknown"
    if isinstance(value, str) and _STATUS.fullmatch(value.strip().lower()):
        status = value.strip().lower()
        return status, None if status in KNOWN_STATUSES else "not a known call status"
    return UNKNOWN_STATUS, "not a call status: stored as unknown"


def _duration(value: Any, completed: bool) -> tuple[int | None, str | None]:
    if value is None or value == "":
        # Voice status callbacks carry CallDuration only for completed calls.
        return None, "missing" if completed else None
    seconds: float | None = None
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and (_WHOLE.fullmatch(value) or _DECIMAL.fullmatch(value))
    ):
        seconds = float(value)
    if seconds is None or math.isnan(seconds):
        return None, "not a number of seconds such as '142'"
    if not 0 <= seconds <= MAX_DURATION_S:
        return None, f"out of range (0-{MAX_DURATION_S} seconds)"
    return math.floor(seconds + 0.5), None


def _mos(value: Any, completed: bool) -> tuple[float | None, str | None]:
    if value is None or value == "":
        return None, "missing" if completed else None
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError
        mos = float(value)
    except (ValueError, OverflowError):  # OverflowError: a JSON integer too big for a float
        return None, "not a number such as '4.5'"
    if mos == 0:  # "no score": the expected value of a call without audio
        return None, "0 means no score" if completed else None
    if math.isnan(mos) or not 1.0 <= mos <= 5.0:
        return None, "out of range (1-5)"
    return mos, None


def parse_callback(fields: Mapping[str, Any], received_at: datetime | None = None) -> CallRecord:
    """The call these fields describe; raises CallbackError only when it cannot be keyed.

    ``received_at`` (default: now) stands in for a Timestamp that cannot be used, and a Problem
    says so."""
    errors: dict[str, str] = {}
    keys: dict[str, str] = {}
    for name in KEY_FIELDS:
        if name not in fields:
            errors[name] = "required field is missing"
            continue
        try:
            keys[name] = _sid(fields[name])
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise CallbackError(errors)
    cleaned, changed = text.clean_fields(fields)
    problems = [Problem(name, raw, text.WHY) for name, raw in changed]
    found: dict[str, Any] = {}

    def take(name: str, parsed: tuple[Any, str | None]) -> None:
        value, why = parsed
        found[name] = value
        if why is not None:
            problems.append(Problem(name, raw_text(cleaned.get(name)), why))

    take("CallStatus", _status(cleaned.get("CallStatus")))
    completed = found["CallStatus"] == "completed"
    take("From", party(cleaned.get("From"), "From"))
    take("To", party(cleaned.get("To"), "To"))
    started_at, why = timestamps.parse(cleaned.get("Timestamp"))
    take("Timestamp", (started_at, why and f"{why}; the time of receipt is used"))
    take("CallDuration", _duration(cleaned.get("CallDuration"), completed))
    take("AudioInMos", _mos(cleaned.get("AudioInMos"), completed))
    received = (received_at or datetime.now(UTC)).astimezone(UTC)
    return CallRecord(
        account_sid=keys["AccountSid"],
        call_sid=keys["CallSid"],
        from_number=found["From"],
        to_number=found["To"],
        started_at=started_at or received.replace(microsecond=received.microsecond // 1000 * 1000),
        status=found["CallStatus"],
        duration_s=found["CallDuration"],
        mos=found["AudioInMos"],
        extra={k: v for k, v in cleaned.items() if k not in DOCUMENTED_FIELDS},
        problems=tuple(sorted(problems, key=lambda p: p.field)),
    )


def to_fields(record: CallRecord) -> dict[str, str]:
    """The record as the sender would post it (used by the simulator and tests); fields with
    no value are sent empty, as real senders do."""
    fields = {
        "CallSid": record.call_sid,
        "AccountSid": record.account_sid,
        "From": "anonymous" if record.from_number == WITHHELD else record.from_number,
        "To": record.to_number,
        "Timestamp": email.utils.format_datetime(record.started_at),
        "CallStatus": record.status,
        "CallDuration": "" if record.duration_s is None else str(record.duration_s),
        "AudioInMos": "" if record.mos is None else repr(record.mos),
    }
    fields.update({k: str(v) for k, v in record.extra.items()})
    return fields
