"""The emulator's REST surface over plain HTTP: prefixes, suffixes, auth, errors, call filters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import ACCOUNT_SID, EmulatorProcess

PREFIXES = ("/api/laml/2010-04-01", "/2010-04-01")


def numbers_url(emulator: EmulatorProcess, prefix: str = PREFIXES[0]) -> str:
    return f"{emulator.base_url}{prefix}/Accounts/{emulator.project_id}/IncomingPhoneNumbers"


def calls_url(emulator: EmulatorProcess) -> str:
    return f"{emulator.api_base}/Accounts/{emulator.project_id}/Calls"


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["message"] and body["more_info"].endswith(str(code))
    return body


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("suffix", ["", ".json"])
def test_both_prefixes_with_and_without_json_suffix(
    emulator: EmulatorProcess, prefix: str, suffix: str
) -> None:
    url = numbers_url(emulator, prefix)
    created = httpx.post(url + suffix, data={"PhoneNumber": "+16175550123"}, auth=emulator.auth)
    assert created.status_code == 201
    number = created.json()
    assert number["friendly_name"] == "(617) 555-0123"
    assert (
        number["uri"]
        == f"{prefix}/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/{number['sid']}.json"
    )
    one = httpx.get(f"{url}/{number['sid']}{suffix}", auth=emulator.auth)
    assert one.json()["phone_number"] == "+16175550123"
    listed = httpx.get(url + suffix, auth=emulator.auth).json()
    assert listed["uri"].startswith(f"{prefix}/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json?")
    assert [n["sid"] for n in listed["incoming_phone_numbers"]] == [number["sid"]]
    deleted = httpx.delete(f"{url}/{number['sid']}{suffix}", auth=emulator.auth)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert_error(httpx.get(f"{url}/{number['sid']}{suffix}", auth=emulator.auth), 404, 20404)


@pytest.mark.parametrize(
    "auth",
    [None, (ACCOUNT_SID, "wrong-token"), ("someone-else", "PTtest-api-token-0123456789")],
)
def test_bad_credentials_get_401_code_20003(
    emulator: EmulatorProcess, auth: tuple[str, str] | None
) -> None:
    for url in (numbers_url(emulator), calls_url(emulator), f"{emulator.base_url}/emulator/calls"):
        response = (
            httpx.get(url, auth=auth) if "emulator/" not in url else httpx.post(url, auth=auth)
        )
        assert_error(response, 401, 20003)
        assert response.headers["www-authenticate"].startswith("Basic")


def test_another_accounts_path_is_refused(emulator: EmulatorProcess) -> None:
    url = f"{emulator.api_base}/Accounts/00000000-0000-4000-8000-000000000000/Calls.json"
    assert_error(httpx.get(url, auth=emulator.auth), 401, 20003)


@pytest.mark.parametrize("size", ["0", "1001", "ten", "-5"])
def test_bad_page_size_is_54454(emulator: EmulatorProcess, size: str) -> None:
    response = httpx.get(numbers_url(emulator), params={"PageSize": size}, auth=emulator.auth)
    assert_error(response, 400, 54454)


def test_unknown_sids_and_paths_are_404_20404(emulator: EmulatorProcess) -> None:
    assert_error(httpx.get(f"{calls_url(emulator)}/nope.json", auth=emulator.auth), 404, 20404)
    assert_error(httpx.get(f"{numbers_url(emulator)}/nope", auth=emulator.auth), 404, 20404)
    assert_error(httpx.get(f"{emulator.api_base}/Nothing", auth=emulator.auth), 404, 20404)


def test_number_parameters_are_checked(emulator: EmulatorProcess) -> None:
    url = numbers_url(emulator)
    assert_error(
        httpx.post(url, data={"PhoneNumber": "+1", "StatusCallback": "x"}, auth=emulator.auth),
        400,
        21402,
    )
    assert_error(
        httpx.post(url, data={"PhoneNumber": "4155550100"}, auth=emulator.auth), 400, 21421
    )
    assert_error(httpx.post(url, data={}, auth=emulator.auth), 400, 21000)
    by_area = httpx.post(url, data={"AreaCode": "512"}, auth=emulator.auth).json()
    assert by_area["phone_number"].startswith("+1512")
    nothing_changed = httpx.post(
        f"{url}/{by_area['sid']}",
        data={"StatusCallback": "http://127.0.0.1/cb", "StatusCallbackMethod": "DELETE"},
        auth=emulator.auth,
    )
    assert_error(nothing_changed, 400, 21209)
    assert httpx.get(f"{url}/{by_area['sid']}", auth=emulator.auth).json()["status_callback"] == ""


def place(emulator: EmulatorProcess, **params: str) -> dict[str, Any]:
    response = httpx.post(f"{emulator.base_url}/emulator/calls", data=params, auth=emulator.auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def listed_sids(emulator: EmulatorProcess, **params: str) -> list[str]:
    """Every call the list answers for ``params``, following next_page_uri."""
    sids: list[str] = []
    response = httpx.get(calls_url(emulator) + ".json", params=params, auth=emulator.auth)
    while True:
        page = response.json()
        assert response.status_code == 200, page
        sids += [call["sid"] for call in page["calls"]]
        if page["next_page_uri"] is None:
            return sids
        response = httpx.get(emulator.base_url + page["next_page_uri"], auth=emulator.auth)


def test_calls_filters_and_paging(emulator: EmulatorProcess) -> None:
    url = numbers_url(emulator)
    lines = [
        httpx.post(url, data={"PhoneNumber": n}, auth=emulator.auth).json()["phone_number"]
        for n in ("+14045550101", "+14045550102")
    ]
    calls = [
        place(
            emulator,
            To=lines[day % 2],
            From="+15125550199" if day == 3 else "anonymous",
            Timestamp=f"Mon, 0{day} Apr 2024 12:00:00 +0000",
            CallStatus="failed" if day == 5 else "completed",
            CallDuration="0" if day == 5 else "90",
            AudioInMos="4.1",
        )
        for day in range(1, 8)
    ]
    by_day = {day: call["sid"] for day, call in zip(range(1, 8), calls, strict=True)}
    newest_first = [by_day[day] for day in range(7, 0, -1)]

    assert listed_sids(emulator) == newest_first
    assert listed_sids(emulator, PageSize="2") == newest_first
    assert listed_sids(emulator, To=lines[0]) == [by_day[6], by_day[4], by_day[2]]
    assert listed_sids(emulator, From="+15125550199") == [by_day[3]]
    assert listed_sids(emulator, From="anonymous", Status="completed") == [
        by_day[d] for d in (7, 6, 4, 2, 1)
    ]
    assert listed_sids(emulator, Status="failed") == [by_day[5]]
    # Bounds are inclusive; a date means the whole day for "<" and "=".
    window = {"StartTime>": "2024-04-03T12:00:00Z", "StartTime<": "Fri, 05 Apr 2024 12:00:00 +0000"}
    assert listed_sids(emulator, **window, PageSize="1") == [by_day[5], by_day[4], by_day[3]]
    assert listed_sids(emulator, **{"StartTime>": "2024-04-06"}) == [by_day[7], by_day[6]]
    assert listed_sids(emulator, **{"StartTime<": "2024-04-02"}) == [by_day[2], by_day[1]]
    assert listed_sids(emulator, StartTime="2024-04-04") == [by_day[4]]
    assert listed_sids(emulator, **{"EndTime>": "2024-04-07T12:01:30+00:00"}) == [by_day[7]]
    assert listed_sids(emulator, **{"EndTime<": "2024-04-01T12:01:29Z"}) == []

    call = httpx.get(f"{calls_url(emulator)}/{by_day[5]}.json", auth=emulator.auth).json()
    assert call["start_time"] == "Fri, 05 Apr 2024 12:00:00 +0000"
    assert (call["status"], call["duration"], call["direction"]) == ("failed", 0, "inbound")
    bad = httpx.get(calls_url(emulator), params={"StartTime>": "yesterday"}, auth=emulator.auth)
    assert "StartTime>" in assert_error(bad, 400, 21000)["message"]


def test_paging_does_not_skip_or_repeat_while_calls_arrive(emulator: EmulatorProcess) -> None:
    line = httpx.post(
        numbers_url(emulator), data={"PhoneNumber": "+13035550100"}, auth=emulator.auth
    ).json()["phone_number"]
    first = [place(emulator, To=line, Timestamp=f"2024-04-0{d}T10:00:00Z")["sid"] for d in (1, 2)]
    page = httpx.get(calls_url(emulator), params={"PageSize": "1"}, auth=emulator.auth).json()
    assert [c["sid"] for c in page["calls"]] == [first[1]]
    newer = place(emulator, To=line, Timestamp="2024-04-09T10:00:00Z")["sid"]
    rest = httpx.get(emulator.base_url + page["next_page_uri"], auth=emulator.auth).json()
    assert [c["sid"] for c in rest["calls"]] == [first[0]]
    assert rest["next_page_uri"] is None
    back = httpx.get(emulator.base_url + rest["previous_page_uri"], auth=emulator.auth).json()
    assert [c["sid"] for c in back["calls"]] == [first[1]]
    assert newer in listed_sids(emulator)


def test_placing_calls_checks_its_parameters(emulator: EmulatorProcess) -> None:
    url = f"{emulator.base_url}/emulator/calls"
    line = httpx.post(
        numbers_url(emulator), data={"PhoneNumber": "+17025550100"}, auth=emulator.auth
    ).json()["phone_number"]
    assert_error(httpx.post(url, data={"To": "+17025550199"}, auth=emulator.auth), 404, 20404)
    for name, value in [
        ("CallStatus", "busy"),
        ("AudioInMos", "7"),
        ("CallDuration", "-1"),
        ("Timestamp", "yesterday"),
        ("Wait", "maybe"),
    ]:
        bad = httpx.post(url, data={"To": line, name: value}, auth=emulator.auth)
        assert assert_error(bad, 400, 21000)["message"].startswith(name)
    drawn = httpx.post(url, json={"To": line, "Wait": True}, auth=emulator.auth).json()
    assert drawn["status"] in ("completed", "failed")
    assert 1 <= drawn["audio_in_mos"] <= 5
    assert drawn["callback"] == {"attempts": 0, "status_code": None, "outcome": "no_callback"}
