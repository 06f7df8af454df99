"""One access line per callback with its outcome, bounded under load, and its JSON form."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from callpulse.config import ConfigError, Settings, load_settings
from callpulse.logs import ACCESS_LOGGER, JsonFormatter
from callpulse.signature import SigningKeys
from callpulse.store import open_store
from callpulse.web.app import create_app
from tests.support import SIGNING_KEY, callback_fields, sign

URL = "http://testserver/callbacks/call-status"


def signed_client(settings: Settings) -> TestClient:
    with open_store(settings) as store:
        store.upgrade()
    keyed = dataclasses.replace(settings, signing_keys=SigningKeys.parse(SIGNING_KEY))
    return TestClient(create_app(keyed))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with signed_client(settings) as test_client:
        yield test_client


def post(client: TestClient, fields: dict[str, str], key: str = SIGNING_KEY) -> int:
    headers = {"X-SignalWire-Signature": sign(URL, fields, key)}
    return client.post("/callbacks/call-status", data=fields, headers=headers).status_code


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_every_outcome_is_one_line_with_the_call_sid(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    call = callback_fields()
    assert post(client, call) == 200
    assert post(client, call) == 200
    assert post(client, {**call, "CallStatus": "failed"}) == 200
    wrong_key = callback_fields()
    assert post(client, wrong_key, key="PSKwrong") == 403
    assert post(client, callback_fields(CallSid="12 345")) == 400
    messages = [r.getMessage() for r in lines(caplog)]
    sid = call["CallSid"]
    assert messages[:3] == [
        f"callback 200 inserted CallSid={sid} from testclient",
        f"callback 200 duplicate CallSid={sid} from testclient",
        f"callback 200 updated CallSid={sid} from testclient",
    ]
    assert messages[3].startswith(
        f"callback 403 signature CallSid={wrong_key['CallSid']} from testclient: "
        "X-SignalWire-Signature: "
    )
    # An invalid CallSid is not repeated in the line; the detail names the field.
    assert messages[4].startswith("callback 400 invalid from testclient: CallSid: ")
    assert len(messages) == 5
    assert post(client, callback_fields(AudioInMos="loud")) == 200
    assert lines(caplog)[-1].getMessage().endswith(": data problems in AudioInMos")


def test_under_load_lines_are_capped_and_the_rest_summed_up(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    monkeypatch.setattr("callpulse.web.access_log.monotonic", lambda: 1000.0)  # all in 1 s
    with signed_client(dataclasses.replace(settings, access_log_per_s=3)) as client:
        for _ in range(8):
            assert post(client, callback_fields()) == 200
        for _ in range(2):
            assert post(client, callback_fields(), key="PSKwrong") == 403
        client.app.state.access_log.flush()  # type: ignore[attr-defined]
        shown = lines(caplog)
        assert len(shown) == 4  # 3 lines (within one second) and the summary
        summary = shown[-1]
        assert summary.getMessage().startswith("7 more callbacks in the last ")
        assert summary.getMessage().endswith("not shown one by one: inserted 5, signature 2")
        fields = summary.fields  # type: ignore[attr-defined]
        assert fields["outcomes"] == {"inserted": 5, "signature": 2}
        client.app.state.access_log.flush()  # type: ignore[attr-defined]
        assert len(lines(caplog)) == 4  # nothing new: no empty summary
        monkeypatch.setattr("callpulse.web.access_log.monotonic", lambda: 1001.0)
        assert post(client, callback_fields()) == 200  # a new second: shown again
        assert lines(caplog)[-1].getMessage().startswith("callback 200 inserted")


def test_zero_turns_the_lines_off(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with signed_client(dataclasses.replace(settings, access_log_per_s=0)) as client:
        assert post(client, callback_fields()) == 200
    assert lines(caplog) == []


def test_json_lines_carry_the_fields(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    call = callback_fields()
    assert post(client, call) == 200
    assert post(client, callback_fields(), key="PSKwrong") == 403
    inserted, refused = (json.loads(JsonFormatter().format(r)) for r in lines(caplog))
    assert set(inserted) == {"time", "level", "logger", "message", "event", "status", "outcome",
                             "call_sid", "method", "client"}  # fmt: skip
    assert inserted["time"].endswith("Z")
    assert (inserted["level"], inserted["logger"], inserted["event"]) == (
        "info", ACCESS_LOGGER, "callback")  # fmt: skip
    assert (inserted["status"], inserted["outcome"], inserted["call_sid"]) == (
        200, "inserted", call["CallSid"])  # fmt: skip
    assert (refused["status"], refused["outcome"]) == (403, "signature")
    assert refused["detail"].startswith("X-SignalWire-Signature: ")


def test_a_bad_log_format_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="CALLPULSE_LOG_FORMAT: expected one of text, json"):
        load_settings({"CALLPULSE_LOG_FORMAT": "xml"})
