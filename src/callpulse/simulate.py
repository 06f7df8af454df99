"""Sending simulated calls: straight at a receiver (signed, as SignalWire posts them) or through
an emulator's numbers, paced to a rate, many in flight at once, every answer tallied."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import signal
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from callpulse.callback import CallRecord, to_fields
from callpulse.errors import CallpulseError
from callpulse.lean_http import LeanClient, LeanHTTPError
from callpulse.signalwire.client import CompatibilityClient
from callpulse.signature import SIGNATURE_HEADERS, compatibility_signature
from callpulse.traffic import SimulatedCall, TrafficModel

DEFAULT_ACCOUNT_SID = "0c4f3e1a-5b2d-4c8e-9a7f-3d6b2e1f0a9c"
# Called numbers when none are given: valid North American numbers, toll-free lines first.
DEFAULT_NUMBERS = ("+18002672001", "+18882672002", "+14152672003", "+12122672004", "+13122672005")
_TIMEOUT = httpx.Timeout(10.0, connect=2.0)
FORM = "application/x-www-form-urlencoded"


@dataclass
class Tally:
    """What was sent, and what came back (answers by a short label such as ``200 inserted``)."""

    calls: int = 0
    completed: int = 0
    failed: int = 0
    mos_sum: float = 0.0
    mos_n: int = 0  # completed calls sent with a MOS: what the receiver's MOS figures cover
    answers: Counter[str] = field(default_factory=Counter)

    @property
    def mean_mos(self) -> float | None:
        return self.mos_sum / self.mos_n if self.mos_n else None

    @property
    def accepted(self) -> int:
        return sum(n for label, n in self.answers.items() if label.startswith("200"))

    def merge(self, other: Tally) -> None:
        """Adds another process's tally to this one."""
        self.calls += other.calls
        self.completed += other.completed
        self.failed += other.failed
        self.mos_sum += other.mos_sum
        self.mos_n += other.mos_n
        self.answers.update(other.answers)

    def add(self, call: SimulatedCall, answer: str) -> None:
        self.calls += 1
        self.completed += call.status == "completed"
        self.failed += call.status == "failed"
        if call.status == "completed" and call.mos is not None:
            self.mos_sum += call.mos
            self.mos_n += 1
        self.answers[answer] += 1


class Sender(Protocol):
    async def send(self, client: httpx.AsyncClient, call: SimulatedCall, sid: str) -> str:
        """Deliver one call; return a short label of the answer."""

    async def close(self) -> None:
        """Release what the sends kept open."""


class ReceiverSender:
    """Posts the status callback straight to a receiver, signed with the compatibility scheme:
    each request encoded and signed once into bytes, sent over kept-alive connections of the
    lean client (``connections``: at least the requests in flight)."""

    def __init__(
        self,
        url: str,
        signing_key: str,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        connections: int = 8,
    ) -> None:
        self.url = url
        self.signing_key = signing_key
        self.account_sid = account_sid
        self._client = LeanClient(url, connections, timeout=_TIMEOUT.read or 10.0)

    def request(self, call: SimulatedCall, sid: str) -> bytes:
        """The signed request for ``call``, ready to send."""
        record = CallRecord(
            account_sid=self.account_sid,
            call_sid=sid,
            from_number=call.from_number,
            to_number=call.to_number,
            started_at=call.started_at,
            status=call.status,
            duration_s=call.duration_s,
            mos=call.mos,
        )
        fields = to_fields(record)
        signature = compatibility_signature(self.signing_key, self.url, fields.items())
        headers = {"Content-Type": FORM, SIGNATURE_HEADERS[0]: signature}
        return self._client.request(urlencode(fields).encode(), headers)

    async def send(self, client: httpx.AsyncClient, call: SimulatedCall, sid: str) -> str:
        del client  # the lean client does the work: a general one costs a core at a few hundred/s
        try:
            status, body = await self._client.send(self.request(call, sid))
        except LeanHTTPError as exc:
            return exc.kind
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        result = answer.get("result") if isinstance(answer, dict) else None
        # "200 inserted", "200 duplicate", ... or the status code alone for a refusal
        return f"{status} {result}" if result else str(status)

    async def close(self) -> None:
        await self._client.close()


@dataclass(frozen=True)
class EmulatorSender:
    """Places each call on an emulator's number, which then fires that number's StatusCallback;
    the emulator answers once the callback was delivered (``Wait=true``)."""

    base_url: str
    project_id: str
    api_token: str

    async def send(self, client: httpx.AsyncClient, call: SimulatedCall, sid: str) -> str:
        del sid  # the emulator gives the call its own sid
        form = {
            "To": call.to_number,
            "From": call.from_number,
            "CallStatus": call.status,
            "CallDuration": str(call.duration_s),
            "AudioInMos": "" if call.mos is None else str(call.mos),
            "Timestamp": email.utils.format_datetime(call.started_at.astimezone(UTC)),
            "Wait": "true",
        }
        response = await client.post(
            f"{self.base_url.rstrip('/')}/emulator/calls",
            data=form,
            auth=(self.project_id, self.api_token),
        )
        body = _json_object(response)
        callback = body.get("callback")
        if response.status_code != 201 or not isinstance(callback, dict):
            return f"emulator {response.status_code} {body.get('code', '')}".rstrip()
        # The receiver's answer as the emulator saw it: "200 delivered", "dropped", ...
        code = callback.get("status_code")
        return f"{code} {callback.get('outcome')}" if code else str(callback.get("outcome"))

    async def close(self) -> None:
        pass  # its requests go through the shared httpx client


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def emulator_numbers(
    emulator_url: str, project_id: str, api_token: str, callback_url: str | None = None
) -> list[str]:
    """The emulator's numbers; pointed at ``callback_url`` (POST) first when one is given."""
    with CompatibilityClient(emulator_url, project_id, api_token) as client:
        numbers = list(client.iter_numbers())
        if callback_url:
            for number in numbers:
                client.update_number(number.sid, status_callback=callback_url, method="POST")
    if not numbers:
        raise CallpulseError(
            f"the emulator at {emulator_url} has no phone numbers "
            "(start it with: callpulse emulate --numbers 5)"
        )
    return [number.phone_number for number in numbers]


def live_calls(model: TrafficModel, count: int | None) -> Iterator[SimulatedCall]:
    """Calls starting at the moment each is drawn (the sender draws one just before sending it);
    ``count`` None: without end."""
    drawn = 0
    while count is None or drawn < count:
        yield model.call(datetime.now(UTC))
        drawn += 1


def modelled_live_calls(model: TrafficModel, calls_per_day: float) -> Iterator[SimulatedCall]:
    """Calls from now on, without end, arriving as the daily pattern has them at
    ``calls_per_day`` (what a backlog of that many a day shows); send them with
    ``send_calls(..., at_start_times=True)``."""
    start = datetime.now(UTC)
    for started_at in model.arrivals(start, datetime.max.replace(tzinfo=UTC), calls_per_day):
        yield model.call(started_at)


def backlog_calls(model: TrafficModel, count: int, span: timedelta) -> Iterator[SimulatedCall]:
    """``count`` calls spread over the ``span`` before now, following the daily pattern."""
    end = datetime.now(UTC).replace(microsecond=0)
    for started_at in model.spread(end - span, end, count):
        yield model.call(started_at)


async def send_calls(
    sender: Sender,
    calls: Iterable[SimulatedCall],
    rng: random.Random,
    *,
    rate: float | None = None,
    concurrency: int = 8,
    on_answer: Callable[[SimulatedCall, str], None] = lambda call, answer: None,
    stop: asyncio.Event | None = None,
    at_start_times: bool = False,
) -> Tally:
    """Send ``calls`` in order, at most ``rate`` per second (None: as fast as answers come), at
    most ``concurrency`` in flight; with ``at_start_times``, each not before its start time
    (live calls drawn ahead). Stops early when ``stop`` is set, after waiting for the calls in
    flight."""
    tally = Tally()
    slots = asyncio.Semaphore(concurrency)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(call: SimulatedCall, sid: str) -> None:
        try:
            answer = await sender.send(client, call, sid)
        except httpx.HTTPError as exc:
            answer = type(exc).__name__
        finally:
            slots.release()
        tally.add(call, answer)
        on_answer(call, answer)

    async with httpx.AsyncClient(timeout=_TIMEOUT, limits=limits) as client:
        in_flight: set[asyncio.Task[None]] = set()
        started = loop.time()
        calls_iter = iter(calls)
        index = 0
        while not stop.is_set():
            if rate:
                delay = started + index / rate - loop.time()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    if stop.is_set():
                        break
            await slots.acquire()
            call = next(calls_iter, None)
            if call is None:
                slots.release()
                break
            if at_start_times:
                wait = (call.started_at - datetime.now(UTC)).total_seconds()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                if stop.is_set():
                    slots.release()
                    break
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            task = asyncio.create_task(one(call, sid))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            index += 1
        await asyncio.gather(*in_flight)
    await sender.close()
    return tally


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` (a graceful end) instead of raising mid-send."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        yield
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
