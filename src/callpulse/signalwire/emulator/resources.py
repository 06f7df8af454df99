"""The resources' JSON, and the writable IncomingPhoneNumber parameters and their checks.

Every key of the real resources is sent: the ``signalwire`` 2.x SDK reads many of them without a
default. ``base`` is the path prefix the request came in on (``/api/laml/2010-04-01`` or
``/2010-04-01``), so ``uri`` fields point back the same way.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from callpulse.callback import WITHHELD
from callpulse.signalwire.emulator.errors import INVALID_METHOD, INVALID_URL, ApiError, invalid
from callpulse.signalwire.emulator.state import Call, PhoneNumber

API_VERSION = "2010-04-01"
MAX_FRIENDLY_NAME = 64

Kind = Literal["text", "url", "method", "bool"]

# Form parameter -> (resource key, kind, default).
NUMBER_PARAMETERS: dict[str, tuple[str, Kind, Any]] = {
    "FriendlyName": ("friendly_name", "text", ""),
    "VoiceUrl": ("voice_url", "url", ""),
    "VoiceMethod": ("voice_method", "method", "POST"),
    "VoiceFallbackUrl": ("voice_fallback_url", "url", ""),
    "VoiceFallbackMethod": ("voice_fallback_method", "method", "POST"),
    "VoiceCallerIdLookup": ("voice_caller_id_lookup", "bool", False),
    "VoiceApplicationSid": ("voice_application_sid", "text", ""),
    "VoiceReceiveMode": ("voice_receive_mode", "text", "voice"),
    "SmsUrl": ("sms_url", "url", ""),
    "SmsMethod": ("sms_method", "method", "POST"),
    "SmsFallbackUrl": ("sms_fallback_url", "url", ""),
    "SmsFallbackMethod": ("sms_fallback_method", "method", "POST"),
    "SmsApplicationSid": ("sms_application_sid", "text", ""),
    "StatusCallback": ("status_callback", "url", ""),
    "StatusCallbackMethod": ("status_callback_method", "method", "POST"),
    "TrunkSid": ("trunk_sid", "text", None),
    "IdentitySid": ("identity_sid", "text", None),
    "AddressSid": ("address_sid", "text", None),
    "BundleSid": ("bundle_sid", "text", None),
    "EmergencyStatus": ("emergency_status", "text", "Inactive"),
    "EmergencyAddressSid": ("emergency_address_sid", "text", None),
}


def _check(name: str, kind: Kind, value: str) -> Any:
    if kind == "url":
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ApiError(400, INVALID_URL, f"{name} is not a valid URL: {value!r}")
        return value
    if kind == "method":
        method = value.upper()
        if method not in ("GET", "POST"):
            raise ApiError(400, INVALID_METHOD, f"{name} must be GET or POST, got {value!r}")
        return method
    if kind == "bool":
        if value.lower() not in ("true", "false"):
            raise invalid(name, f"must be true or false, got {value!r}")
        return value.lower() == "true"
    if name == "FriendlyName" and len(value) > MAX_FRIENDLY_NAME:
        raise invalid(name, f"must be at most {MAX_FRIENDLY_NAME} characters")
    return value


def number_settings(params: Mapping[str, str]) -> dict[str, Any]:
    """The writable parameters present in ``params``, checked, by resource key."""
    return {
        key: _check(name, kind, params[name])
        for name, (key, kind, _default) in NUMBER_PARAMETERS.items()
        if name in params
    }


def rfc2822(moment: datetime) -> str:
    return email.utils.format_datetime(moment)


def number_path(base: str, account_sid: str) -> str:
    return f"{base}/Accounts/{account_sid}/IncomingPhoneNumbers"


def calls_path(base: str, account_sid: str) -> str:
    return f"{base}/Accounts/{account_sid}/Calls"


def number_json(number: PhoneNumber, account_sid: str, base: str) -> dict[str, Any]:
    defaults = {key: default for key, _kind, default in NUMBER_PARAMETERS.values()}
    return {
        "sid": number.sid,
        "account_sid": account_sid,
        "phone_number": number.phone_number,
        **defaults,
        **number.settings,
        "capabilities": {"voice": True, "sms": True, "mms": True, "fax": True},
        "api_version": API_VERSION,
        "date_created": rfc2822(number.date_created),
        "date_updated": rfc2822(number.date_updated),
        "beta": False,
        "origin": "signalwire",
        "address_requirements": "none",
        "status": "in-use",
        "uri": f"{number_path(base, account_sid)}/{number.sid}.json",
        "subresource_uris": {},
    }


def caller_id(call: Call) -> str:
    """The caller as the API shows it: a withheld caller id is ``anonymous``."""
    return "anonymous" if call.record.from_number == WITHHELD else call.record.from_number


def call_json(call: Call, account_sid: str, base: str) -> dict[str, Any]:
    record = call.record
    caller = caller_id(call)
    uri = f"{calls_path(base, account_sid)}/{call.sid}"
    return {
        "sid": call.sid,
        "account_sid": account_sid,
        "parent_call_sid": None,
        "date_created": rfc2822(call.date_created),
        "date_updated": rfc2822(call.date_created),
        "to": record.to_number,
        "to_formatted": record.to_number,
        "from": caller,
        "from_formatted": caller,
        "phone_number_sid": call.phone_number_sid,
        "status": record.status,
        "start_time": rfc2822(record.started_at),
        "end_time": rfc2822(call.end_time),
        "duration": record.duration_s,
        "audio_in_mos": record.mos,
        "price": None,
        "price_unit": "USD",
        "direction": "inbound",
        "answered_by": None,
        "annotation": None,
        "api_version": API_VERSION,
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{uri}.json",
        "subresource_uris": {
            "notifications": f"{uri}/Notifications.json",
            "recordings": f"{uri}/Recordings.json",
        },
    }
