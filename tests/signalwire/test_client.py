"""The Compatibility REST client: URLs, credentials, paging, retries and one-line errors.

Paging and the API's own answers are checked against the emulator in test_numbers_cli.py and
tests/test_reconcile.py; here a scripted HTTP server on loopback plays the answers the emulator
never gives (rate limits, server errors, silence)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from callpulse.signalwire.client import (
    API_PREFIX,
    ApiCall,
    CompatibilityClient,
    SignalWireError,
    base_url,
)
from tests.support import free_port

PROJECT = "6b7c0a1e-0d5e-4a3f-9d55-0d2a4a0f1c11"
NUMBERS_PATH = f"{API_PREFIX}/Accounts/{PROJECT}/IncomingPhoneNumbers.json"
CALLS_PATH = f"{API_PREFIX}/Accounts/{PROJECT}/Calls.json"

Reply = tuple[int, dict[str, str], Any]  # status, headers, JSON body


class ScriptedApi:
    """A real HTTP server answering each request with the next scripted reply, and recording
    what it was asked."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[str, str, str]] = []  # method, path with query, body
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                api.requests.append((self.command, self.path, body))
                status, headers, payload = api.replies.pop(0)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def client(self, **kwargs: Any) -> CompatibilityClient:
        return CompatibilityClient(self.url, PROJECT, "token", **kwargs)


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[ScriptedApi] = []

    def start(*replies: Reply) -> ScriptedApi:
        api = ScriptedApi(list(replies))
        api.thread.start()
        servers.append(api)
        return api

    yield start
    for api in servers:
        api.server.shutdown()
        api.server.server_close()


def number_json(sid: str, phone: str, callback: str | None = None) -> dict[str, Any]:
    return {
        "sid": sid,
        "account_sid": PROJECT,
        "phone_number": phone,
        "friendly_name": phone,
        "status_callback": callback,
        "status_callback_method": "POST",
        "voice_url": "",
    }


def page(key: str, items: list[dict[str, Any]], next_uri: str | None) -> dict[str, Any]:
    return {key: items, "next_page_uri": next_uri, "page": 0, "page_size": len(items)}


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("example.signalwire.com", "https://example.signalwire.com"),
        (" example.signalwire.com/ ", "https://example.signalwire.com"),
        ("https://example.signalwire.com/api/laml", "https://example.signalwire.com"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
    ],
)
def test_space_url_becomes_a_base_url(given: str, expected: str) -> None:
    assert base_url(given) == expected


@pytest.mark.parametrize("given", ["", "ftp://example.signalwire.com", "https://"])
def test_a_bad_space_url_names_the_setting(given: str) -> None:
    with pytest.raises(SignalWireError, match="SIGNALWIRE_SPACE_URL"):
        base_url(given)


def test_from_environment_names_every_missing_variable() -> None:
    env = {"SIGNALWIRE_PROJECT_ID": PROJECT, "SIGNALWIRE_API_TOKEN": " "}
    with pytest.raises(SignalWireError) as caught:
        CompatibilityClient.from_environment(env)
    message = str(caught.value)
    assert "SIGNALWIRE_SPACE_URL" in message
    assert "SIGNALWIRE_API_TOKEN" in message
    assert "SIGNALWIRE_PROJECT_ID," not in message.split("(")[0]


def test_from_environment_builds_a_client() -> None:
    env = {
        "SIGNALWIRE_SPACE_URL": "example.signalwire.com",
        "SIGNALWIRE_PROJECT_ID": PROJECT,
        "SIGNALWIRE_API_TOKEN": "PTxyz",
    }
    with CompatibilityClient.from_environment(env) as client:
        assert client.base_url == "https://example.signalwire.com"
        assert client.project_id == PROJECT


# -- network failures: one line naming the host ---------------------------------------------------


def test_connection_refused_names_the_host() -> None:
    port = free_port()  # nothing listens there
    client = CompatibilityClient(f"http://127.0.0.1:{port}", PROJECT, "t")
    with client, pytest.raises(SignalWireError) as caught:
        list(client.iter_numbers())
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "refused" in message.lower()
    assert "\n" not in message


def test_unknown_host_names_the_host() -> None:
    client = CompatibilityClient("no-such-space.invalid", PROJECT, "t")
    with client, pytest.raises(SignalWireError, match=r"no-such-space\.invalid"):
        client.find_number("+15551230000")


def test_a_silent_server_times_out_with_the_host_named() -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        client = CompatibilityClient(f"http://{host}", PROJECT, "t", timeout=0.3)
        with client, pytest.raises(SignalWireError, match=rf"{host} did not answer within 0\.3 s"):
            list(client.iter_numbers())


# -- API answers ----------------------------------------------------------------------------------


def test_auth_failure_says_which_settings_to_check(scripted: Any) -> None:
    error = {"code": 20003, "message": "Authentication Error", "status": 401}
    api = scripted((401, {}, error))
    with api.client() as client, pytest.raises(SignalWireError) as caught:
        list(client.iter_numbers())
    assert "check SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN" in str(caught.value)
    assert caught.value.code == 20003
    assert len(api.requests) == 1  # a refusal is not retried


def test_other_api_errors_carry_code_and_message(scripted: Any) -> None:
    error = {"code": 21402, "message": "StatusCallback is not a valid URL", "status": 400}
    api = scripted((400, {}, error))
    with api.client() as client, pytest.raises(SignalWireError) as caught:
        client.update_number("PN1", status_callback="x", method="POST")
    message = str(caught.value)
    assert "21402" in message
    assert "StatusCallback is not a valid URL" in message
    assert "HTTP 400" in message


def test_rate_limits_and_server_errors_are_retried(scripted: Any) -> None:
    limited = {"code": 20429, "message": "Too Many Requests", "status": 429}
    number = number_json("PN1", "+15551230001")
    api = scripted(
        (429, {"Retry-After": "0"}, limited),
        (503, {"Retry-After": "0"}, {"message": "unavailable"}),
        (200, {}, page("incoming_phone_numbers", [number], None)),
    )
    with api.client() as client:
        numbers = list(client.iter_numbers())
    assert [n.sid for n in numbers] == ["PN1"]
    assert len(api.requests) == 3


def test_retries_end_with_the_last_error(scripted: Any) -> None:
    failure = (500, {"Retry-After": "0"}, {"code": 20500, "message": "Internal Server Error"})
    api = scripted(*[failure] * 4)
    with api.client() as client, pytest.raises(SignalWireError, match=r"20500.*Internal Server"):
        list(client.iter_numbers())
    assert len(api.requests) == 4


def test_paging_follows_next_page_uri_on_the_same_host(scripted: Any) -> None:
    second = f"{NUMBERS_PATH}?Page=1&PageSize=1000&PageToken=PA1"
    api = scripted(
        (200, {}, page("incoming_phone_numbers", [number_json("PN1", "+15551230001")], second)),
        (200, {}, page("incoming_phone_numbers", [number_json("PN2", "+15551230002")], None)),
    )
    with api.client() as client:
        numbers = list(client.iter_numbers())
    assert [n.phone_number for n in numbers] == ["+15551230001", "+15551230002"]
    first_path, next_path = api.requests[0][1], api.requests[1][1]
    assert parse_qs(urlsplit(first_path).query) == {"PageSize": ["1000"]}
    assert next_path == second  # taken as given, no parameters added twice
    assert numbers[0].status_callback == ""  # null: no callback set


def test_a_next_page_on_another_host_is_refused(scripted: Any) -> None:
    elsewhere = "https://collector.example/steal?Page=1"
    api = scripted(
        (200, {}, page("incoming_phone_numbers", [number_json("PN1", "+15551230001")], elsewhere)),
    )
    with api.client() as client, pytest.raises(SignalWireError, match="next page elsewhere"):
        list(client.iter_numbers())
    assert len(api.requests) == 1  # the credentials never left for the other host


def test_find_number_matches_exactly_and_names_an_unknown_one(scripted: Any) -> None:
    # A server that ignores the PhoneNumber filter: the client still picks the right one.
    both = [number_json("PN1", "+15551230001"), number_json("PN2", "+15551230002")]
    missing = {"code": 20404, "message": "The requested resource was not found", "status": 404}
    api = scripted(
        (200, {}, page("incoming_phone_numbers", both, None)),
        (404, {}, missing),
        (200, {}, page("incoming_phone_numbers", both, None)),
    )
    with api.client() as client:
        assert client.find_number("+15551230002").sid == "PN2"
        with pytest.raises(SignalWireError, match="no phone number 'PNnope'"):
            client.find_number("PNnope")
        with pytest.raises(SignalWireError, match=r"no phone number '\+15559999999'"):
            client.find_number("+15559999999")


def call_json(sid: str, start: datetime, **overrides: Any) -> dict[str, Any]:
    return {
        "sid": sid,
        "account_sid": PROJECT,
        "from": "+447700900123",
        "to": "+15551230001",
        "status": "completed",
        "direction": "inbound",
        "start_time": start.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "end_time": None,
        "date_created": None,
        "duration": "61",
        "audio_in_mos": None,
        "phone_number_sid": "PN1",
        **overrides,
    }


def test_iter_calls_sends_the_range_and_keeps_only_calls_inside_it(scripted: Any) -> None:
    since = datetime(2024, 4, 4, 18, 0, tzinfo=UTC)
    until = since + timedelta(hours=1)
    calls = [
        call_json("CA-before", since - timedelta(seconds=1)),
        call_json("CA-first", since),
        call_json("CA-last", until, duration=7, audio_in_mos=4.2),
        call_json("CA-after", until + timedelta(seconds=1)),
    ]
    api = scripted((200, {}, page("calls", calls, None)))
    with api.client() as client:
        found = list(client.iter_calls(since=since, until=until))
    assert [c.sid for c in found] == ["CA-first", "CA-last"]
    query = parse_qs(urlsplit(api.requests[0][1]).query)
    assert query["StartTime>"] == ["Thu, 04 Apr 2024 18:00:00 +0000"]
    assert query["StartTime<"] == ["Thu, 04 Apr 2024 19:00:00 +0000"]
    first, last = found
    assert (first.duration_s, first.mos) == (61, None)  # Twilio's string duration is read
    assert (last.duration_s, last.mos) == (7, 4.2)
    assert last.start_time == until


def test_an_unreadable_resource_is_a_one_line_error(scripted: Any) -> None:
    bad = call_json("CA1", datetime(2024, 4, 4, tzinfo=UTC), duration="long")
    api = scripted((200, {}, page("calls", [bad], None)))
    since = datetime(2024, 4, 3, tzinfo=UTC)
    with api.client() as client, pytest.raises(SignalWireError, match="call callpulse cannot"):
        list(client.iter_calls(since=since, until=since + timedelta(days=2)))


def test_api_call_reads_a_minimal_resource() -> None:
    call = ApiCall.from_json({"sid": "CA1"})
    assert (call.sid, call.start_time, call.duration_s, call.mos) == ("CA1", None, None, None)
