"""The emulated project's numbers and calls: in memory, behind one lock, as immutable snapshots."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from callpulse.callback import CallRecord
from callpulse.signalwire.emulator.errors import NUMBER_UNAVAILABLE, ApiError, not_found


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class PhoneNumber:
    sid: str
    phone_number: str
    seq: int  # creation order: the list order and the paging key
    date_created: datetime
    date_updated: datetime
    settings: Mapping[str, Any] = field(default_factory=dict)  # resource key -> value

    def setting(self, key: str) -> Any:
        return self.settings.get(key)


@dataclass(frozen=True)
class Call:
    record: CallRecord
    phone_number_sid: str
    seq: int
    date_created: datetime

    @property
    def sid(self) -> str:
        return self.record.call_sid

    @property
    def end_time(self) -> datetime:
        return self.record.started_at + timedelta(seconds=self.record.duration_s or 0)

    @property
    def sort_key(self) -> tuple[int, int]:
        """Newest start first, as the API lists calls; ties in reverse creation order."""
        return (-int(self.record.started_at.timestamp()), -self.seq)


class Project:
    """One project's IncomingPhoneNumbers and Calls; every method is safe from any thread."""

    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self._lock = threading.Lock()
        self._seq = 0
        self._numbers: dict[str, PhoneNumber] = {}
        self._sid_by_e164: dict[str, str] = {}
        self._calls: dict[str, Call] = {}

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add_number(self, phone_number: str, settings: Mapping[str, Any]) -> PhoneNumber:
        now = utcnow()
        with self._lock:
            if phone_number in self._sid_by_e164:
                raise ApiError(
                    400,
                    NUMBER_UNAVAILABLE,
                    f"PhoneNumber {phone_number} is already in this project",
                )
            number = PhoneNumber(
                str(uuid.uuid4()), phone_number, self._next_seq(), now, now, dict(settings)
            )
            self._numbers[number.sid] = number
            self._sid_by_e164[phone_number] = number.sid
            return number

    def number(self, sid: str) -> PhoneNumber:
        with self._lock:
            return self._number(sid)

    def _number(self, sid: str) -> PhoneNumber:
        number = self._numbers.get(sid)
        if number is None:
            raise not_found(f"IncomingPhoneNumber {sid}")
        return number

    def number_for(self, phone_number: str) -> PhoneNumber | None:
        with self._lock:
            sid = self._sid_by_e164.get(phone_number)
            return None if sid is None else self._numbers[sid]

    def update_number(self, sid: str, settings: Mapping[str, Any]) -> PhoneNumber:
        with self._lock:
            old = self._number(sid)
            number = dataclasses.replace(
                old, date_updated=utcnow(), settings={**old.settings, **settings}
            )
            self._numbers[sid] = number
            return number

    def remove_number(self, sid: str) -> None:
        with self._lock:
            number = self._number(sid)
            del self._numbers[sid]
            del self._sid_by_e164[number.phone_number]

    def numbers(self) -> list[PhoneNumber]:
        with self._lock:
            return sorted(self._numbers.values(), key=lambda n: n.seq)

    def add_call(self, record: CallRecord, phone_number_sid: str) -> Call:
        with self._lock:
            call = Call(record, phone_number_sid, self._next_seq(), utcnow())
            self._calls[call.sid] = call
            return call

    def call(self, sid: str) -> Call:
        with self._lock:
            call = self._calls.get(sid)
        if call is None:
            raise not_found(f"Call {sid}")
        return call

    def calls(self) -> list[Call]:
        with self._lock:
            return sorted(self._calls.values(), key=lambda c: c.sort_key)
