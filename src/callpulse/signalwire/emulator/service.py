"""The emulator itself: one project's state, the traffic model, the drop switch, deliveries."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass

from callpulse.callback import to_fields
from callpulse.signalwire.emulator import catalog, delivery
from callpulse.signalwire.emulator.delivery import Attempt, Deliverer, DeliveryLog
from callpulse.signalwire.emulator.errors import invalid, not_found
from callpulse.signalwire.emulator.placing import inbound_call
from callpulse.signalwire.emulator.state import Call, PhoneNumber, Project
from callpulse.traffic import TrafficModel

SHUTDOWN_GRACE_S = 5.0


@dataclass(frozen=True)
class EmulatorConfig:
    project_id: str
    api_token: str
    signing_key: str
    drop_share: float = 0.0
    seed: int | None = None
    numbers: int = 0  # pre-created at start


class Emulator:
    """Places inbound calls and fires their StatusCallbacks (in the background unless waited)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.project = Project(config.project_id)
        self.log = DeliveryLog()
        self.drop_share = config.drop_share
        # Separate streams: the drop pattern of a seed stays the same whatever values are drawn.
        self.rng = random.Random(f"{config.seed}/traffic" if config.seed is not None else None)
        self._drop_rng = random.Random(f"{config.seed}/drops" if config.seed is not None else None)
        self._model: TrafficModel | None = None
        self._deliverer: Deliverer | None = None
        self._tasks: set[asyncio.Task[Attempt]] = set()
        catalog.seed_numbers(self.project, config.numbers, self.rng)

    async def start(self) -> None:
        self._deliverer = Deliverer(self.config.signing_key, self.log)

    async def stop(self) -> None:
        """Let running deliveries finish (a few seconds at most), then close the client."""
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=SHUTDOWN_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._deliverer is not None:
            await self._deliverer.aclose()

    def set_drop_share(self, text: str) -> None:
        try:
            share = float(text)
        except ValueError:
            share = -1.0
        if not 0.0 <= share <= 1.0:
            raise invalid("DropShare", f"must be a number from 0 to 1, got {text!r}")
        self.drop_share = share

    def _model_for(self, numbers: tuple[str, ...]) -> TrafficModel:
        if self._model is None or self._model.to_numbers != numbers:
            self._model = TrafficModel(self.rng, numbers)
        return self._model

    def place(self, params: Mapping[str, str]) -> tuple[Call, PhoneNumber]:
        """A new inbound call to ``To``, a number of the project (as it is configured now)."""
        to_number = params.get("To")
        if not to_number:
            raise invalid("To", "is required: the project's number being called")
        number = self.project.number_for(to_number)
        if number is None:
            raise not_found(
                f"IncomingPhoneNumber {to_number} (To must be a number of this project)"
            )
        model = self._model_for(
            tuple(n.phone_number for n in self.project.numbers()) or (to_number,)
        )
        record = inbound_call(params, self.project.project_id, to_number, model)
        return self.project.add_call(record, number.sid), number

    async def fire(self, call: Call, number: PhoneNumber, wait: bool) -> Attempt | None:
        """Send the call's StatusCallback; returns the final attempt when ``wait``."""
        assert self._deliverer is not None, "start() first"
        url = number.setting("status_callback") or ""
        method = number.setting("status_callback_method") or "POST"
        if not url:
            return self._deliverer.skip(call.sid, url, method, delivery.NO_CALLBACK)
        if self._drop_rng.random() < self.drop_share:
            return self._deliverer.skip(call.sid, url, method, delivery.DROPPED)
        send = self._deliverer.deliver(call.sid, url, method, to_fields(call.record))
        if wait:
            return await send
        task = asyncio.create_task(send)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return None
