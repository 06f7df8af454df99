"""The callback endpoint in this process: the real app (lifespan, writer) over a SQLite file.

Request handling only: what is signed, which keys, the size limit, the path, probes. What
needs a real ``serve`` process (crashes, workers, outages, slow clients, start-up) is in
tests/e2e.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from signalwire.request_validator import RequestValidator as SignalWireValidator
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator as TwilioValidator

from callpulse.config import Settings, load_settings
from callpulse.signature import SigningKeys
from callpulse.store import open_store
from callpulse.store.records import QuarantineEntry, StoredCall
from callpulse.web.app import create_app
from tests.support import SIGNING_KEY, callback_fields

BASE = "http://testserver"
CALLBACK_PATH = "/callbacks/call-status"
CALLBACK_URL = BASE + CALLBACK_PATH


class Receiver:
    """A client of the app, and what its database holds once the app has stopped."""

    def __init__(self, settings: Settings, allow_unsigned: bool) -> None:
        self.settings = settings
        self.client = TestClient(create_app(settings, allow_unsigned))
        self.client.__enter__()  # the lifespan: the writer runs
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.client.__exit__(None, None, None)  # the writer stores what it buffered

    def post(
        self,
        fields: Mapping[str, str],
        *,
        url: str = CALLBACK_URL,
        signed_url: str | None = None,
        key: str = SIGNING_KEY,
    ) -> httpx.Response:
        """POST ``fields`` as a form, signed by the SignalWire SDK over ``signed_url``."""
        validator = SignalWireValidator(key)
        signature = validator.build_signature_with_compatibility(signed_url or url, dict(fields))
        return self.client.post(
            url, data=dict(fields), headers={"X-SignalWire-Signature": signature}
        )

    def stored(self) -> tuple[list[StoredCall], list[QuarantineEntry]]:
        """Calls and quarantine entries (oldest first), after the app wrote everything."""
        self.stop()
        with open_store(self.settings) as store:
            return list(store.iter_calls()), list(reversed(store.list_quarantine(limit=1000)))


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """Start the app with settings changed from a SQLite file and the test signing key."""
    started: list[Receiver] = []

    def start_app(allow_unsigned: bool = False, **changes: Any) -> Receiver:
        directory = tmp_path / f"app{len(started)}"
        settings = Settings(
            **{
                "database_url": f"sqlite:///{directory / 'callpulse.db'}",
                "spool_dir": directory / "spool",
                "signing_keys": SigningKeys.parse(SIGNING_KEY),
                **changes,
            }
        )
        directory.mkdir()
        with open_store(settings) as store:
            store.upgrade()
        started.append(Receiver(settings, allow_unsigned))
        return started[-1]

    yield start_app
    for receiver in started:
        receiver.stop()


def result(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    assert set(data) == {"result"}, data
    return str(data["result"])


def refusal(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, str(response.json()["reason"])


def test_public_url_is_what_gets_signed(start: Callable[..., Receiver]) -> None:
    public = "https://calls.example.com/base"
    receiver = start(public_url=public)
    signed_url = public + CALLBACK_PATH
    sids = []

    f = callback_fields()
    assert result(receiver.post(f, signed_url=signed_url)) == "inserted"
    sids.append(f["CallSid"])

    f = callback_fields()  # signed with the explicit standard port
    explicit_port = f"https://calls.example.com:443/base{CALLBACK_PATH}"
    assert result(receiver.post(f, signed_url=explicit_port)) == "inserted"
    sids.append(f["CallSid"])

    f = callback_fields()  # the query string is part of the signed URL
    response = receiver.post(f, url=f"{CALLBACK_URL}?tenant=7", signed_url=f"{signed_url}?tenant=7")
    assert result(response) == "inserted"
    sids.append(f["CallSid"])

    f = callback_fields()  # GET
    query = urlencode(f)
    signature = TwilioValidator(SIGNING_KEY).compute_signature(f"{signed_url}?{query}", {})
    response = receiver.client.get(
        f"{CALLBACK_URL}?{query}", headers={"X-Twilio-Signature": signature}
    )
    assert result(response) == "inserted"
    sids.append(f["CallSid"])

    # A signature over the URL the app actually sees is now wrong.
    assert refusal(receiver.post(callback_fields())) == (403, "signature")

    calls, entries = receiver.stored()
    assert sorted(c.record.call_sid for c in calls) == sorted(sids)
    assert [(e.reason, e.url) for e in entries] == [("signature", signed_url)]


def test_per_account_keys_and_rotation(start: Callable[..., Receiver]) -> None:
    one, two = "b3877c40-0000-4998-90ad-000000000001", "b3877c40-0000-4998-90ad-000000000002"
    keys = SigningKeys.parse(f"{one}=PSKone, {two}=PSKtwo-old,{two}=PSKtwo-new")
    receiver = start(signing_keys=keys)
    accepted = []
    for account, key in [(one, "PSKone"), (two, "PSKtwo-old"), (two, "PSKtwo-new")]:
        f = callback_fields(AccountSid=account)
        assert result(receiver.post(f, key=key)) == "inserted"
        accepted.append((account, f["CallSid"]))

    refused = [
        (one, "PSKtwo-new"),  # another account's key
        (two, "PSKone"),
        (two, SIGNING_KEY),
        ("b3877c40-0000-4998-90ad-000000000003", "PSKone"),  # an account with no key at all
    ]
    for account, key in refused:
        response = receiver.post(callback_fields(AccountSid=account), key=key)
        assert refusal(response) == (403, "signature"), (account, key, response.text)
    unknown = response.json()["fields"]["X-SignalWire-Signature"]
    assert "b3877c40-0000-4998-90ad-000000000003" in unknown

    calls, entries = receiver.stored()
    assert sorted((c.record.account_sid, c.record.call_sid) for c in calls) == sorted(accepted)
    assert [e.reason for e in entries] == ["signature"] * len(refused)


def test_body_size_limit_is_exact(start: Callable[..., Receiver]) -> None:
    limit = 65536
    receiver = start()
    base = callback_fields(Padding="")
    at_limit = dict(base, Padding="p" * (limit - len(urlencode(base))))
    assert len(urlencode(at_limit)) == limit
    assert result(receiver.post(at_limit)) == "inserted"

    over = dict(at_limit, CallSid=callback_fields()["CallSid"], Padding=at_limit["Padding"] + "p")
    assert len(urlencode(over)) == limit + 1
    assert refusal(receiver.post(over)) == (413, "too_large")

    calls, entries = receiver.stored()
    assert [c.record.call_sid for c in calls] == [at_limit["CallSid"]]
    assert calls[0].record.extra == {"Padding": at_limit["Padding"]}
    assert [(e.reason, e.body_size) for e in entries] == [("too_large", limit + 1)]


def test_callback_path_is_configurable(start: Callable[..., Receiver]) -> None:
    receiver = start(callback_path="/hooks/inbound-status")
    f = callback_fields()
    assert result(receiver.post(f, url=f"{BASE}/hooks/inbound-status")) == "inserted"
    assert receiver.client.post(CALLBACK_URL, data=f).status_code == 404
    calls, _ = receiver.stored()
    assert [c.record.call_sid for c in calls] == [f["CallSid"]]


def test_head_probe_is_answered_and_not_quarantined(start: Callable[..., Receiver]) -> None:
    receiver = start()
    assert receiver.client.head(CALLBACK_URL).status_code == 200
    assert receiver.stored() == ([], [])


def test_allow_unsigned_does_not_disable_configured_keys(start: Callable[..., Receiver]) -> None:
    receiver = start(allow_unsigned=True)
    assert refusal(receiver.client.post(CALLBACK_URL, data=callback_fields())) == (403, "signature")
    assert result(receiver.post(callback_fields())) == "inserted"


def test_the_setting_refuses_signatures_over_the_url_alone(start: Callable[..., Receiver]) -> None:
    setting = load_settings({"CALLPULSE_REFUSE_UNCOVERED_BODIES": "true"})
    receiver = start(refuse_uncovered_bodies=setting.refuse_uncovered_bodies)
    signature = TwilioValidator(SIGNING_KEY).compute_signature(CALLBACK_URL, {})
    response = receiver.client.post(
        CALLBACK_URL,
        content=json.dumps(callback_fields()),
        headers={"Content-Type": "application/json", "X-Twilio-Signature": signature},
    )
    assert refusal(response) == (403, "signature")
    assert (
        "CALLPULSE_REFUSE_UNCOVERED_BODIES" in response.json()["fields"]["X-SignalWire-Signature"]
    )
    assert receiver.stored()[0] == []


def test_other_methods_are_refused_naming_the_allowed_ones(start: Callable[..., Receiver]) -> None:
    receiver = start()
    response = receiver.client.put(CALLBACK_URL, data=callback_fields())
    assert response.status_code == 405
    said, allowed = response.json()["error"].split(": use ")
    assert said == f"PUT is not allowed on {CALLBACK_PATH}"
    assert set(allowed.split(", ")) == {"GET", "HEAD", "POST"}
    assert receiver.stored() == ([], [])


def test_a_defect_is_one_log_line_and_a_500_the_sender_retries(
    start: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = start()
    ingestor = receiver.client.app.receiver.ingestor  # type: ignore[attr-defined]

    async def broken(raw: object) -> None:
        raise RuntimeError("a defect")

    ingestor.handle = broken
    with caplog.at_level("ERROR", logger="callpulse.web.receiver"):
        response = receiver.post(callback_fields())
    assert response.status_code == 500 and "retry later" in response.json()["error"]
    [line] = [r for r in caplog.records if r.name == "callpulse.web.receiver"]
    assert line.getMessage() == "callback from testclient not handled: RuntimeError: a defect"
    assert line.exc_info is None
