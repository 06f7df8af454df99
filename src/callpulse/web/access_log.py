"""One log line per callback with its outcome, bounded: at most ``per_second`` lines each
second, the rest counted and summed up every ``SUMMARY_S`` seconds, so a flood costs a few
lines and the callback path only a clock read and a counter."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from time import monotonic
from urllib.parse import parse_qsl

from callpulse.ingest.gate import RawCallback
from callpulse.ingest.pipeline import Answer
from callpulse.logs import ACCESS_LOGGER

log = logging.getLogger(ACCESS_LOGGER)
SUMMARY_S = 5.0
MAX_DETAIL = 200
_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # anything else is not shown: the line stays one line


def outcome(answer: Answer) -> str:
    """inserted / updated / duplicate, or why not: signature, invalid, too_large, unavailable..."""
    body = answer.body
    if "result" in body:
        return str(body["result"])
    if "reason" in body:
        return str(body["reason"])
    return "unavailable" if answer.status == 503 else "error"


def _sid(value: object) -> str | None:
    return value if isinstance(value, str) and _SID.fullmatch(value) else None


def call_sid(raw: RawCallback, answer: Answer) -> str | None:
    """The CallSid of the answer, or of a refused request's body when it names a valid one."""
    if answer.call_sid is not None:
        return answer.call_sid
    try:
        if raw.body.lstrip().startswith(b"{"):
            found = json.loads(raw.body).get("CallSid")
        else:
            text = raw.body.decode("utf-8", "replace") or raw.url.partition("?")[2]
            found = dict(parse_qsl(text)).get("CallSid")
    except (ValueError, AttributeError):
        return None
    return _sid(found)


def _detail(answer: Answer) -> str:
    fields = answer.body.get("fields") or {}
    text = "; ".join(f"{k}: {v}" for k, v in fields.items())
    if answer.body.get("problems"):  # stored, but these fields were not taken as sent
        text = "data problems in " + ", ".join(p["field"] for p in answer.body["problems"])
    text = " ".join(text.split())  # one line whatever the field said
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


class AccessLog:
    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._window = 0.0
        self._shown = 0
        self._hidden: Counter[str] = Counter()
        self._since = monotonic()

    def record(self, raw: RawCallback, answer: Answer, client: str) -> None:
        if self.per_second <= 0:
            return
        now = monotonic()
        if now - self._window >= 1.0:
            self._window, self._shown = now, 0
        kind = outcome(answer)
        if self._shown >= self.per_second:
            self._hidden[kind] += 1
            return
        self._shown += 1
        sid = call_sid(raw, answer)
        detail = _detail(answer)
        fields = {"event": "callback", "status": answer.status, "outcome": kind,
                  "call_sid": sid, "method": raw.method, "client": client}  # fmt: skip
        if detail:
            fields["detail"] = detail
        log.info(
            "callback %s %s%s from %s%s",
            answer.status,
            kind,
            f" CallSid={sid}" if sid else "",
            client,
            f": {detail}" if detail else "",
            extra={"fields": fields},
        )

    def flush(self) -> None:
        """The summary of the lines not shown since the last one, if any."""
        now = monotonic()
        hidden, seconds = self._hidden, now - self._since
        self._hidden, self._since = Counter(), now
        if not hidden:
            return
        total = sum(hidden.values())
        counts = ", ".join(f"{kind} {n}" for kind, n in hidden.most_common())
        log.info(
            "%s more callbacks in the last %.0f s, not shown one by one: %s",
            total,
            seconds,
            counts,
            extra={"fields": {"event": "callbacks_not_shown", "count": total,
                              "seconds": round(seconds, 1), "outcomes": dict(hidden)}},
        )  # fmt: skip

    async def summarize(self) -> None:
        """Runs while the app does: a summary every SUMMARY_S seconds."""
        while True:
            await asyncio.sleep(SUMMARY_S)
            self.flush()
