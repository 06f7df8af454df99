"""The official clients, unchanged but for the base URL, manage numbers on the emulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import signalwire.rest
import twilio.rest
from twilio.base.exceptions import TwilioRestException

from tests.support import EmulatorProcess

Client = twilio.rest.Client


def signalwire_client(emulator: EmulatorProcess, token: str | None = None) -> Client:
    client = signalwire.rest.Client(
        emulator.project_id,
        token or emulator.api_token,
        signalwire_space_url=f"127.0.0.1:{emulator.port}",
    )
    # The SDK always builds an https:// URL from the space; the emulator speaks plain http.
    client.api.base_url = emulator.base_url
    return client


def twilio_client(emulator: EmulatorProcess, token: str | None = None) -> Client:
    client = Client(emulator.project_id, token or emulator.api_token)
    client.api.base_url = emulator.base_url
    return client


CLIENTS = {"signalwire": signalwire_client, "twilio": twilio_client}
MakeClient = Callable[..., Client]


@pytest.fixture(params=sorted(CLIENTS))
def make_client(request: pytest.FixtureRequest) -> MakeClient:
    return CLIENTS[request.param]


def test_number_crud_and_paging_over_120_numbers(
    emulator: EmulatorProcess, make_client: MakeClient
) -> None:
    client = make_client(emulator)
    created = [
        client.incoming_phone_numbers.create(
            phone_number=f"+1415555{index:04d}", friendly_name=f"Line {index}"
        )
        for index in range(120)
    ]
    assert created[7].phone_number == "+14155550007"
    assert created[7].friendly_name == "Line 7"
    assert created[7].status_callback_method == "POST"

    first = client.incoming_phone_numbers.page(page_size=50)
    second = first.next_page()
    third = second.next_page()
    pages = [list(first), list(second), list(third)]
    assert [len(page) for page in pages] == [50, 50, 20]
    assert third.next_page() is None
    assert [n.sid for n in second.previous_page()] == [n.sid for n in pages[0]]
    listed = client.incoming_phone_numbers.list(page_size=50)
    assert [n.sid for n in listed] == [n.sid for n in created]
    assert [n.sid for page in pages for n in page] == [n.sid for n in created]

    target = created[42]
    updated = client.incoming_phone_numbers(target.sid).update(
        status_callback="https://calls.example.com/callbacks/call-status",
        status_callback_method="GET",
    )
    assert updated.status_callback == "https://calls.example.com/callbacks/call-status"
    fetched = client.incoming_phone_numbers(target.sid).fetch()
    assert (fetched.status_callback_method, fetched.friendly_name) == ("GET", "Line 42")
    assert fetched.date_updated >= fetched.date_created

    assert client.incoming_phone_numbers(target.sid).delete() is True
    assert len(client.incoming_phone_numbers.list(page_size=1000)) == 119
    assert client.incoming_phone_numbers.list(phone_number="+14155550007")[0].sid == created[7].sid


def error_of(call: Callable[[], object]) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call()
    return caught.value


def test_errors_surface_as_sdk_exceptions_with_codes(
    emulator: EmulatorProcess, make_client: MakeClient
) -> None:
    client = make_client(emulator)
    number = client.incoming_phone_numbers.create(phone_number="+12125550100")
    numbers = client.incoming_phone_numbers

    missing = error_of(lambda: numbers("0e0e0e0e-0000-4000-8000-000000000000").fetch())
    assert (missing.status, missing.code) == (404, 20404)
    bad_url = error_of(lambda: numbers(number.sid).update(status_callback="ftp://x"))
    assert (bad_url.status, bad_url.code) == (400, 21402)
    bad_method = error_of(lambda: numbers(number.sid).update(status_callback_method="PUT"))
    assert (bad_method.status, bad_method.code) == (400, 21209)
    duplicate = error_of(lambda: numbers.create(phone_number="+12125550100"))
    assert duplicate.code == 21452
    invalid = error_of(lambda: numbers.create(phone_number="555-0100"))
    assert (invalid.status, invalid.code) == (400, 21421)
    wrong_token = make_client(emulator, token="not-the-token")
    denied = error_of(lambda: wrong_token.incoming_phone_numbers(number.sid).fetch())
    assert (denied.status, denied.code) == (401, 20003)
    # Nothing of the failed updates stuck.
    assert numbers(number.sid).fetch().status_callback == ""


def test_calls_read_through_the_sdk(emulator: EmulatorProcess, make_client: MakeClient) -> None:
    import httpx

    client = make_client(emulator)
    number = client.incoming_phone_numbers.create(phone_number="+13125550111")
    placed = httpx.post(
        f"{emulator.base_url}/emulator/calls",
        data={"To": number.phone_number, "CallStatus": "completed", "CallDuration": "61"},
        auth=emulator.auth,
    ).json()
    call = client.calls(placed["sid"]).fetch()
    assert (call.to, call.status, call.direction) == (number.phone_number, "completed", "inbound")
    assert (call.phone_number_sid, int(call.duration)) == (number.sid, 61)
    assert [c.sid for c in client.calls.list(to=number.phone_number)] == [placed["sid"]]
    assert client.calls.list(status="failed") == []
