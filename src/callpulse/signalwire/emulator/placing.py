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


def _checked(fields: Mapping[str, str], given: Mapping[str, str]) -> CallRecord:
    """The call, refusing a given parameter the receiver could not take as sent (the emulator
    places calls to order; a receiver stores whatever a real sender sends)."""
    try:
        record = parse_callback(fields, utcnow())
    except CallbackError as exc:
        name, why = next(iter(exc.errors.items()))
        raise invalid(name, why) from None
    for problem in record.problems:
        if given.get(problem.field):  # (an empty one asks for no value: a call without a MOS)
            raise invalid(problem.field, f"{problem.why}; got {problem.value!r}")
    return record


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
    started_at = _checked({**fields, **_STAND_INS, **given}, given).started_at
    drawn = model.call(started_at, to_number)
    # A completed call asked for where the model drew a failure: draw again for its length.
    while status == "completed" and drawn.status != "completed":
        drawn = model.call(started_at, to_number)
    status = status or drawn.status
    drawn_fields = {
        "From": drawn.from_number,
        "CallStatus": status,
        # As real senders do: a failed call has no audio to score and lasted 0 s.
        "CallDuration": "0" if status == "failed" else str(drawn.duration_s),
        "AudioInMos": "" if status == "failed" or drawn.mos is None else str(drawn.mos),
    }
    return _checked({**fields, **drawn_fields, **given}, given)
