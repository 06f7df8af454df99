"""The pipeline for one request: gate -> writer (group commit or spool) -> the answer.

Everything the gate rejects is counted and quarantined without the answer waiting for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from callpulse import metrics
from callpulse.ingest import quarantine
from callpulse.ingest.gate import CallbackGate, RawCallback, Rejected
from callpulse.ingest.writer import BatchWriter
from callpulse.store.base import SaveResult
from callpulse.store.errors import StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    call_sid: str | None = None  # of the call it answers, when there is one (the access log)


class Ingestor:
    def __init__(self, gate: CallbackGate, writer: BatchWriter) -> None:
        self.gate = gate
        self.writer = writer

    async def handle(self, raw: RawCallback) -> Answer:
        started = time.perf_counter()
        try:
            answer = await self._handle(raw)
        finally:
            metrics.LATENCY.observe(time.perf_counter() - started)
        return answer

    async def _handle(self, raw: RawCallback) -> Answer:
        try:
            write = self.gate.accept(raw)
        except Rejected as rejection:
            metrics.outcome(rejection.reason).inc()
            entry = quarantine.rejected(raw, rejection, self.gate.max_body_bytes)
            # Not awaited: the answer never waits for the entry, which the writer stores only
            # while no call is waiting; a full buffer drops it (callpulse_quarantine_shed).
            self.writer.quarantine(entry)
            return Answer(
                rejection.status,
                {"error": str(rejection), "reason": rejection.reason, "fields": rejection.errors},
            )
        sid = write.record.call_sid
        try:
            result = await self.writer.submit(write)
        except StoreUnavailable as exc:
            metrics.outcome("unavailable").inc()
            log.error("callback %s not stored: %s", write.record.call_sid, exc)
            return Answer(503, {"error": "storage unavailable, retry later"}, sid)
        metrics.outcome(result.value).inc()
        if result in (SaveResult.INSERTED, SaveResult.SPOOLED):
            # A new call, or one the spool holds for the database: retries and corrections of a
            # stored call are not counted again (a retry while spooled is, rarely).
            metrics.count_call(write.record.status)
        problems = write.record.problems
        if problems and result in (SaveResult.INSERTED, SaveResult.UPDATED):
            metrics.count_problems(problems)
        if result is SaveResult.REFUSED:
            return Answer(
                500,
                {
                    "result": result.value,
                    "error": "the database refused this callback; "
                    "it is kept in quarantine (callpulse quarantine list)",
                },
                sid,
            )
        if problems:  # so whoever tests a sender by hand sees what was not taken as sent
            return Answer(
                200, {"result": result.value, "problems": [p.as_dict() for p in problems]}, sid
            )
        return Answer(200, {"result": result.value}, sid)
