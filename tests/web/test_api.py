"""The JSON API against a real server: signed callbacks in, every endpoint checked against ground
truth computed here from what was sent, and every answer against the OpenAPI document."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from callpulse.analytics.erlang import staff
from tests.support import BACKENDS, ServerProcess, backend_database, callback_fields

TOKEN = "test-api-token-5f1c0e7d9b"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY = datetime(2024, 4, 4, tzinfo=UTC)
RANGE = {"since": "2024-04-04T00:00:00Z", "until": "2024-04-05T00:00:00Z"}
NUMBERS = ("+18005550101", "+18005550102")
CALLERS = {"US": "+14155550", "GB": "+44207946", "DE": "+4930123"}


def _call(
    n: int, hour: int, minute: int, status: str, duration: int, mos: float, to: str, caller: str
) -> dict[str, str]:
    return callback_fields(
        CallSid=f"CA{n:032d}",
        From=caller,
        To=to,
        Timestamp=format_datetime(DAY + timedelta(hours=hour, minutes=minute)),
        CallStatus=status,
        CallDuration=str(duration),
        AudioInMos=f"{mos:.2f}",
    )


def _traffic() -> list[dict[str, str]]:
    """Forty calls on DAY: three regions, two numbers, failures, one busy, short calls, poor MOS,
    one caller calling three times; plus five calls the day before (the previous period)."""
    calls = []
    for n in range(40):
        region = ("US", "US", "GB", "DE")[n % 4]
        caller = f"{CALLERS[region]}{n:03d}"
        status = "failed" if n % 7 == 3 else "busy" if n == 10 else "completed"
        duration = 0 if status != "completed" else (5 + n % 4 if n % 6 == 0 else 60 + 17 * n)
        mos = 4.45 - (n % 9) * 0.2 if status == "completed" else 1.0 + (n % 3)
        calls.append(_call(n, 8 + n % 9, n, status, duration, mos, NUMBERS[n % 5 == 0], caller))
    repeat = f"{CALLERS['US']}999"
    # The 2nd and 3rd are repeat calls; the first two make 09:00 the one busiest hour.
    for n, hour, minute in ((40, 9, 5), (41, 9, 50), (42, 15, 30)):
        calls.append(_call(n, hour, minute, "completed", 120, 4.2, NUMBERS[0], repeat))
    for n in range(50, 55):
        call = _call(n, 12, n, "completed", 30, 4.0, NUMBERS[1], f"{CALLERS['GB']}{n:03d}")
        call["Timestamp"] = format_datetime(DAY - timedelta(hours=5, minutes=n))
        calls.append(call)
    return calls


def _region(fields: dict[str, str]) -> str:
    return next(r for r, prefix in CALLERS.items() if fields["From"].startswith(prefix))


def _started(fields: dict[str, str]) -> datetime:
    return datetime.strptime(fields["Timestamp"], "%a, %d %b %Y %H:%M:%S %z")


class Api:
    def __init__(self, server: ServerProcess, sent: list[dict[str, str]]) -> None:
        self.server = server
        self.sent = sent
        self.client = httpx.Client(base_url=server.base_url + "/api/v1", timeout=10)
        self.openapi: dict[str, Any] = self.client.get("/openapi.json").json()

    @property
    def today(self) -> list[dict[str, str]]:
        return [f for f in self.sent if _started(f).date() == DAY.date()]

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        errors = conforms(body, self._schema(path), self.openapi)
        assert not errors, f"{path} does not match the OpenAPI document: {errors}"
        return body

    def _schema(self, path: str) -> dict[str, Any]:
        template = "/calls/{call_sid}" if path.startswith("/calls/") else path
        operation = self.openapi["paths"][template]["get"]
        schema: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"][
            "schema"
        ]
        return schema


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def conforms(value: Any, schema: dict[str, Any], doc: dict[str, Any], at: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema`` (the subset of JSON Schema the document uses)."""
    schema = _resolve(schema, doc)
    if "anyOf" in schema:
        options = [conforms(value, option, doc, at) for option in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{at}: no anyOf option fits {value!r}"]
    kind = schema.get("type")
    checks = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }
    if kind is None:
        return []
    if not checks[kind]:
        return [f"{at}: expected {kind}, got {value!r}"]
    errors: list[str] = []
    if kind == "string" and schema.get("format") == "date-time":
        datetime.fromisoformat(value)
    if kind == "array":
        for i, item in enumerate(value):
            errors += conforms(item, schema.get("items", {}), doc, f"{at}[{i}]")
    if kind == "object" and "properties" in schema:
        properties = schema["properties"]
        errors += [f"{at}: missing {k}" for k in schema.get("required", []) if k not in value]
        errors += [f"{at}: undocumented {k}" for k in value if k not in properties]
        for key, item in value.items():
            if key in properties:
                errors += conforms(item, properties[key], doc, f"{at}.{key}")
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        for key, item in value.items():
            errors += conforms(item, schema["additionalProperties"], doc, f"{at}.{key}")
    return errors


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    workdir: Path = tmp_path_factory.mktemp(f"api-{request.param}")
    with backend_database(str(request.param), workdir) as url:
        server = ServerProcess(
            workdir, env={"CALLPULSE_API_TOKEN": TOKEN}, database_url=url
        ).start()
        try:
            sent = _traffic()
            with httpx.Client() as client:
                for fields in sent:
                    assert server.post(fields, client=client).status_code == 200
                bad = callback_fields(CallSid="not an id")
                assert server.post(bad, client=client).status_code == 400
            yield Api(server, sent)
        finally:
            server.stop()


ENDPOINTS = [
    "/summary",
    "/timeseries",
    "/numbers",
    "/regions",
    "/staffing",
    "/calls",
    "/quarantine",
]


@pytest.mark.parametrize("path", [*ENDPOINTS, "/calls/CA1"])
def test_every_endpoint_needs_the_token(api: Api, path: str) -> None:
    missing = api.client.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "CALLPULSE_API_TOKEN" in missing.json()["error"]
    wrong = api.client.get(path, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert "wrong API token" in wrong.json()["error"]


@pytest.mark.parametrize(
    ("path", "params", "parameter", "words"),
    [
        ("/summary", {"since": "yesterday"}, "since", "ISO 8601"),
        ("/summary", {"until": "2024-13-01T00:00:00"}, "until", "ISO 8601"),
        ("/summary", {"since": "2024-04-05T00:00:00Z", "until": "2024-04-04"}, "since", "before"),
        ("/summary", {"since": "2020-01-01T00:00:00Z", "until": "2024-01-01"}, "since", "400 days"),
        ("/numbers", {"to": "18005550101x"}, "to", "E.164"),
        ("/regions", {"region": "USA"}, "region", "country code"),
        ("/summary", {"caller": "somebody"}, "caller", "withheld"),
        ("/summary", {"account_sid": "a b"}, "account_sid", "letters"),
        ("/timeseries", {"bucket": "week"}, "bucket", "minute, hour, day"),
        ("/timeseries", {"tz": "Mars/Olympus"}, "tz", "Europe/Berlin"),
        ("/timeseries", {"tz": "../../etc/passwd"}, "tz", "IANA"),
        (
            "/timeseries",
            {"bucket": "minute", "since": "2024-04-01", "until": "2024-04-10"},
            "bucket",
            "coarser bucket",
        ),
        ("/staffing", {"service_level": "1"}, "service_level", "below 1"),
        ("/staffing", {"service_level": "most"}, "service_level", "such as 0.8"),
        ("/staffing", {"answer_within_s": "-1"}, "answer_within_s", "0 to 86400"),
        ("/staffing", {"max_occupancy": "0.05"}, "max_occupancy", "0.1 to 1"),
        ("/staffing", {"shrinkage": "1.0"}, "shrinkage", "below 1"),
        ("/staffing", {"region": "USA"}, "region", "country code"),
        ("/staffing", {"tz": "Mars/Base"}, "tz", "IANA"),
        ("/calls", {"limit": "501"}, "limit", "1 to 500"),
        ("/calls", {"limit": "0"}, "limit", "1 to 500"),
        ("/calls", {"cursor": "forged"}, "cursor", "next_cursor"),
        ("/quarantine", {"cursor": "forged"}, "cursor", "next_cursor"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(
    api: Api, path: str, params: dict[str, str], parameter: str, words: str
) -> None:
    response = api.client.get(path, params=params, headers=AUTH)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["parameter"] == parameter
    assert body["error"].startswith(f"{parameter}: ")
    assert words in body["error"]
    assert "Traceback" not in response.text


def test_unknown_call_and_unknown_endpoint_are_json_404s(api: Api) -> None:
    call = api.client.get("/calls/CA-never-sent", headers=AUTH)
    assert call.status_code == 404
    assert call.json()["error"] == "no call with CallSid CA-never-sent"
    endpoint = api.client.get("/nothing-here", headers=AUTH)
    assert endpoint.status_code == 404
    assert "openapi.json" in endpoint.json()["error"]


def test_openapi_document_is_generated_from_the_models(api: Api) -> None:
    doc = api.openapi
    assert doc["openapi"].startswith("3.")
    assert {p.removeprefix("/") for p in doc["paths"]} >= {
        *(e.removeprefix("/") for e in ENDPOINTS),
        "calls/{call_sid}",
    }
    summary = _resolve({"$ref": "#/components/schemas/Summary"}, doc)
    assert {"calls", "success_rate", "mos", "duration", "previous", "busiest_hour"} <= set(
        summary["properties"]
    )
    assert doc["servers"] == [{"url": "/api/v1"}]
    assert {"HTTPBearer", "APIKeyCookie"} <= set(doc["components"]["securitySchemes"])
    # The interactive docs would load scripts from the internet: they are off.
    assert api.client.get("/docs").status_code == 404


def test_summary_equals_ground_truth(api: Api) -> None:
    s = api.get("/summary", **RANGE)
    today = api.today
    completed = [f for f in today if f["CallStatus"] == "completed"]
    failed = [f for f in today if f["CallStatus"] == "failed"]
    moss = [float(f["AudioInMos"]) for f in completed]
    durations = [int(f["CallDuration"]) for f in completed]
    assert (s["calls"], s["completed"], s["failed"]) == (len(today), len(completed), len(failed))
    assert s["success_rate"] == pytest.approx(len(completed) / (len(completed) + len(failed)))
    assert s["mos"]["mean"] == pytest.approx(statistics.mean(moss))
    assert s["mos"]["poor_rate"] == pytest.approx(sum(m < 3.5 for m in moss) / len(moss))
    assert s["mos"]["p50"] == pytest.approx(statistics.median(moss), abs=0.1)
    assert min(moss) <= s["mos"]["p05"] <= s["mos"]["p50"] <= s["mos"]["p95"] <= max(moss)
    assert sum(band["calls"] for band in s["mos"]["bands"]) == len(moss)
    assert s["duration"]["total_s"] == sum(durations)
    assert s["duration"]["acd_s"] == pytest.approx(statistics.mean(durations))
    assert s["short_call_rate"] == pytest.approx(sum(d < 10 for d in durations) / len(durations))
    assert s["repeat_callers"] == 2
    hours = Counter(_started(f).replace(minute=0) for f in today)
    busiest, count = hours.most_common(1)[0]
    assert busiest.hour == 9
    assert datetime.fromisoformat(s["busiest_hour"]["start"]) == busiest
    assert s["busiest_hour"]["calls"] == count
    in_busiest = [int(f["CallDuration"]) for f in today if _started(f).replace(minute=0) == busiest]
    assert s["busiest_hour"]["erlangs"] == pytest.approx(sum(in_busiest) / 3600)
    assert s["previous"]["calls"] == len(api.sent) - len(today)


def test_summary_defaults_to_the_last_24_hours(api: Api) -> None:
    s = api.get("/summary")
    until = datetime.fromisoformat(s["until"])
    assert abs((datetime.now(UTC) - until).total_seconds()) < 60
    assert until - datetime.fromisoformat(s["since"]) == timedelta(hours=24)
    assert s["calls"] == 0  # everything sent is from 2024


def test_filters_narrow_the_summary(api: Api) -> None:
    by_number = api.get("/summary", to=NUMBERS[1], **RANGE)
    assert by_number["calls"] == sum(f["To"] == NUMBERS[1] for f in api.today)
    # '+' sent unencoded arrives as a space: still understood.
    query = f"to={NUMBERS[1]}&since={RANGE['since']}&until={RANGE['until']}"
    raw = api.client.get(f"/summary?{query}", headers=AUTH)
    assert raw.json()["calls"] == by_number["calls"]
    by_region = api.get("/summary", region="gb", **RANGE)
    assert by_region["calls"] == sum(_region(f) == "GB" for f in api.today)
    caller = api.today[0]["From"]
    assert api.get("/summary", caller=caller, **RANGE)["calls"] == 1


def test_timeseries_hourly_matches_what_was_sent(api: Api) -> None:
    points = api.get("/timeseries", bucket="hour", **RANGE)
    got = {datetime.fromisoformat(p["bucket_start"]): p for p in points if p["calls"]}
    expected = Counter(_started(f).replace(minute=0) for f in api.today)
    assert {start: p["calls"] for start, p in got.items()} == dict(expected)
    for start, point in got.items():
        in_hour = [f for f in api.today if _started(f).replace(minute=0) == start]
        assert point["completed"] == sum(f["CallStatus"] == "completed" for f in in_hour)
        assert point["failed"] == sum(f["CallStatus"] == "failed" for f in in_hour)
    days = api.get("/timeseries", bucket="day", **RANGE)
    assert sum(p["calls"] for p in days) == len(api.today)


def test_timeseries_days_follow_the_time_zone(api: Api) -> None:
    zone = ZoneInfo("America/New_York")
    days = api.get("/timeseries", bucket="day", tz="America/New_York", **RANGE)
    starts = [datetime.fromisoformat(p["bucket_start"]) for p in days]
    assert all(s.astimezone(zone).time() == time(0) for s in starts)
    got = {s.astimezone(zone).date(): p["calls"] for s, p in zip(starts, days, strict=True)}
    want = Counter(_started(f).astimezone(zone).date() for f in api.today)
    assert {d: n for d, n in got.items() if n} == dict(want)


def test_numbers_and_regions_match_what_was_sent(api: Api) -> None:
    numbers = {row["to"]: row for row in api.get("/numbers", **RANGE)}
    assert {to: row["calls"] for to, row in numbers.items()} == dict(
        Counter(f["To"] for f in api.today)
    )
    for to, row in numbers.items():
        mine = [f for f in api.today if f["To"] == to]
        assert row["completed"] == sum(f["CallStatus"] == "completed" for f in mine)
        assert row["failed"] == sum(f["CallStatus"] == "failed" for f in mine)
    regions = {row["region"]: row["calls"] for row in api.get("/regions", **RANGE)}
    assert regions == dict(Counter(_region(f) for f in api.today))


def test_staffing_per_hour_from_what_was_sent(api: Api) -> None:
    plan = api.get("/staffing", **RANGE)
    defaults = {"service_level": 0.8, "answer_within_s": 20, "max_occupancy": 0.85, "shrinkage": 0}
    assert plan["target"] == defaults
    intervals = plan["intervals"]
    assert [datetime.fromisoformat(i["start"]) for i in intervals] == [
        DAY + timedelta(hours=h) for h in range(24)
    ]
    for interval in intervals:
        start = datetime.fromisoformat(interval["start"])
        mine = [f for f in api.today if _started(f).replace(minute=0) == start]
        durations = [int(f["CallDuration"]) for f in mine if f["CallStatus"] == "completed"]
        assert interval["calls"] == len(mine)
        if not mine:
            assert (interval["agents"], interval["scheduled"], interval["erlangs"]) == (0, 0, 0)
            continue
        aht = statistics.mean(durations)
        assert interval["aht_s"] == pytest.approx(aht)
        assert interval["erlangs"] == pytest.approx(len(mine) * aht / 3600)
        want = staff(len(mine) * aht / 3600, aht)
        assert (interval["agents"], interval["scheduled"]) == (want.agents, want.scheduled)
        assert interval["agents"] >= 1
        assert interval["service_level"] == pytest.approx(want.service_level)
        assert interval["occupancy"] <= 0.85
    # One day: each hour of the week once, the same figures as the intervals.
    profile = plan["profile"]
    assert [(p["weekday"], p["hour"], p["weeks"]) for p in profile] == [
        (DAY.weekday(), h, 1) for h in range(24)
    ]
    assert [p["agents"] for p in profile] == [i["agents"] for i in intervals]
    strict = api.get("/staffing", shrinkage="0.5", max_occupancy="0.5", **RANGE)["intervals"]
    for loose, tight in zip(intervals, strict, strict=True):
        assert tight["agents"] >= loose["agents"]
        assert tight["scheduled"] == 2 * tight["agents"]
    # Kolkata's hours start at half past in UTC: 05:00 there is 23:30 UTC the day before.
    kolkata = api.get("/staffing", tz="Asia/Kolkata", **RANGE)["intervals"]
    assert kolkata[0]["start"] == "2024-04-03T23:30:00Z" and len(kolkata) == 25
    assert sum(i["calls"] for i in kolkata) == len(api.today)
    one_line = api.get("/staffing", to=NUMBERS[1], **RANGE)["intervals"]
    assert sum(i["calls"] for i in one_line) == sum(f["To"] == NUMBERS[1] for f in api.today)


def test_call_paging_visits_every_call_once(api: Api) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = api.get("/calls", limit=7, **RANGE, **({"cursor": cursor} if cursor else {}))
        seen += [call["call_sid"] for call in page["calls"]]
        starts = [call["started_at"] for call in page["calls"]]
        assert starts == sorted(starts, reverse=True)  # newest first
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == -(-len(api.today) // 7)
    assert sorted(seen) == sorted(f["CallSid"] for f in api.today)


def test_calls_filter_by_status_and_number(api: Api) -> None:
    failed = api.get("/calls", status="failed", limit=500, **RANGE)["calls"]
    assert sorted(c["call_sid"] for c in failed) == sorted(
        f["CallSid"] for f in api.today if f["CallStatus"] == "failed"
    )
    to_second = api.get("/calls", to=NUMBERS[1], limit=500, **RANGE)["calls"]
    assert {c["to"] for c in to_second} == {NUMBERS[1]}
    assert len(to_second) == sum(f["To"] == NUMBERS[1] for f in api.today)


def test_one_call(api: Api) -> None:
    fields = api.today[5]
    call = api.get(f"/calls/{fields['CallSid']}")
    assert call["call_sid"] == fields["CallSid"]
    assert call["account_sid"] == fields["AccountSid"]
    assert call["from"] == fields["From"]
    assert call["to"] == fields["To"]
    assert call["status"] == fields["CallStatus"]
    assert call["duration_s"] == int(fields["CallDuration"])
    assert call["mos"] == pytest.approx(float(fields["AudioInMos"]))
    assert call["region"] == _region(fields)
    assert datetime.fromisoformat(call["started_at"]) == _started(fields)
    scoped = api.get(f"/calls/{fields['CallSid']}", account_sid=fields["AccountSid"])
    assert scoped["call_sid"] == fields["CallSid"]
    other = api.client.get(
        f"/calls/{fields['CallSid']}", params={"account_sid": "other"}, headers=AUTH
    )
    assert other.status_code == 404


def test_quarantine_lists_the_rejected_callback(api: Api) -> None:
    page = api.get("/quarantine")
    assert page["kept"] == 1
    (entry,) = page["entries"]
    assert entry["reason"] == "invalid"
    assert "CallSid" in entry["errors"]
    assert "not+an+id" in entry["body"]
