"""A reproducible mix of calls, retries, updates and recovered calls over a few days."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import phonenumbers

from callpulse.callback import WITHHELD, CallRecord, Problem
from callpulse.store.base import RECONCILED, CallWrite

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
ACCOUNTS = ("AC-one", "AC-two")
CALLED = ("+18005550101", "+18005550102", "+442071234567")


def callers(rng: random.Random) -> list[str]:
    numbers = []
    for region in ("US", "GB", "DE", "FR", "BR", "IN"):
        example = phonenumbers.format_number(
            phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE),
            phonenumbers.PhoneNumberFormat.E164,
        )
        for _ in range(6):
            candidate = example[:-2] + f"{rng.randrange(100):02d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
                numbers.append(candidate)
    return [*sorted(set(numbers)), "sip:alice@example.com", "client:tommy", WITHHELD]


def generate(seed: int = 7, count: int = 700) -> tuple[list[list[CallWrite]], list[CallRecord]]:
    """Batches of writes as they would reach the store, and each call's final record."""
    rng = random.Random(seed)
    pool = callers(rng)
    finals: dict[str, CallRecord] = {}
    writes: list[CallWrite] = []
    for _ in range(count):
        status = rng.choices(["completed", "failed", "busy"], [88, 10, 2])[0]
        record = CallRecord(
            account_sid=rng.choice(ACCOUNTS),
            call_sid=str(uuid.UUID(int=rng.getrandbits(128))),
            from_number=rng.choice(pool),
            to_number=rng.choice(CALLED),
            started_at=START + timedelta(seconds=rng.randrange(4 * 86400)),
            status=status,
            # As real senders do: a failed call has no MOS and lasted 0 s (or sent no duration);
            # a few completed calls come without a duration or a MOS.
            duration_s=rng.choice([0, None]) if status != "completed" else rng.choice(
                [rng.randrange(0, 12), rng.randrange(12, 600), rng.randrange(600, 4000)])
            if rng.random() > 0.03 else None,
            # Two decimals mostly, three sometimes (3.497 must count as below 3.5).
            mos=round(rng.uniform(1.0, 4.6), rng.choice([2, 2, 3]))
            if status == "completed" and rng.random() > 0.03 else None,
            problems=(Problem("AudioInMos", "7.2", "out of range (1-5)"),)
            if rng.random() < 0.04 else (),
        )  # fmt: skip
        writes.append(CallWrite(record, START))
        finals[record.call_sid] = record
        if rng.random() < 0.1:  # a retry of the same callback
            writes.append(CallWrite(record, START))
        if rng.random() < 0.08:  # a corrected callback: new status, duration and MOS
            updated = replace(record, status="completed", duration_s=rng.randrange(1, 300),
                              mos=round(rng.uniform(3.0, 4.5), 2))  # fmt: skip
            writes.append(CallWrite(updated, START))
            finals[record.call_sid] = updated
        if rng.random() < 0.05:  # recovered from the Calls API with other values: ignored
            writes.append(CallWrite(replace(record, status="failed"), START, RECONCILED))
    batches, at = [], 0
    while at < len(writes):
        size = rng.randrange(1, 60)
        batches.append(writes[at : at + size])
        at += size
    return batches, list(finals.values())
