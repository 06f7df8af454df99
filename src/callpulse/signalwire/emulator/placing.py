"""An inbound call from the ``POST /emulator/calls`` parameters: given values, checked like a
callback, and realistic ones from the traffic model for whatever was left out."""

from __future__ import annotations

import email.utils
import uuid
from collections.abc import Mapping

from callpulse.callback import CallbackError, CallRecord, parse_callback
from callpulse.signalwire.emulator.errors import invalid
from callpulse.signalwire.emulator.state import utcnow
from callpulse.traffic import TrafficModel

FINAL_STATUSES = ("completed", "failed")
GIVEN = ("From", "Timestamp", "CallStatus", "CallDuration", "AudioInMos")
# Stand-ins for parameters left out, so that what was given is checked before drawing the rest.
_STAND_INS = {
    "From": "anonymous",
    "CallStatus": "completed",
    "CallDuration": "0",
    "AudioInMos": "4",
}


def _checked(fields: Mapping[str, str]) -> CallRecord:
    try:
        return parse_callback(fields)
    except CallbackError as exc:
        name, why = next(iter(exc.errors.items()))
        raise invalid(name, why) from None


def inbound_call(
    params: Mapping[str, str], account_sid: str, to_number: str, model: TrafficModel
) -> CallRecord:
    """The call ``params`` describe, to ``to_number``; raises ApiError naming a bad parameter."""
    status = params.get("CallStatus")
    if status is not None and status not in FINAL_STATUSES:
        raise invalid("CallStatus", f"must be completed or failed, got {status!r}")
    given = {name: params[name] for name in GIVEN if name in params}
    fields = {
        "CallSid": str(uuid.uuid4()),
        "AccountSid": account_sid,
        "To": to_number,
        "Timestamp": email.utils.format_datetime(utcnow()),
    }
    started_at = _checked({**fields, **_STAND_INS, **given}).started_at
    drawn = model.call(started_at, to_number)
    # A completed call asked for where the model drew a failure: draw again for its length.
    while status == "completed" and drawn.status != "completed":
        drawn = model.call(started_at, to_number)
    status = status or drawn.status
    drawn_fields = {
        "From": drawn.from_number,
        "CallStatus": status,
        "CallDuration": "0" if status == "failed" else str(drawn.duration_s),
        "AudioInMos": str(drawn.mos),
    }
    return _checked({**fields, **drawn_fields, **given})
