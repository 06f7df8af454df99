"""The dashboard in real headless Chromium against a real server: log in, tiles, charts, filters,
and a caller-supplied script that must show as text and never run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.e2e.dashboard import (
    CHARTS,
    NUMBERS,
    PAYLOAD,
    TOKEN,
    call_rows,
    log_in,
    sent_calls,
    tile,
    wait_ready,
    wait_tile,
)
from tests.support import ServerProcess, callback_fields


def test_wrong_token_is_refused(page: Page, dashboard_server: ServerProcess) -> None:
    log_in(page, dashboard_server, "not-the-token")
    assert "wrong token" in page.inner_text(".error")
    assert page.query_selector("#tiles") is None
    assert page.context.cookies() == []


def test_dashboard_shows_the_numbers_and_draws_the_charts(
    page: Page, dashboard_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    log_in(page, dashboard_server)
    first_view_ms = wait_ready(page)
    with capsys.disabled():
        print(f"\ndashboard first view complete after {first_view_ms} ms (loopback)")
    calls = sent_calls()
    completed = sum(c["CallStatus"] == "completed" for c in calls)
    failed = len(calls) - completed
    assert tile(page, "calls") == str(len(calls))
    assert tile(page, "success_rate") == f"{completed / (completed + failed) * 100:.1f} %"
    durations = [int(c["CallDuration"]) for c in calls if c["CallStatus"] == "completed"]
    acd = round(sum(durations) / len(durations))
    assert tile(page, "acd") == f"{acd // 60} m {acd % 60} s"
    for chart in CHARTS:
        painted = page.evaluate(
            """id => {
                const canvas = document.getElementById(id);
                const pixels = canvas.getContext('2d')
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let n = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) n++;
                return n;
            }""",
            chart,
        )
        assert painted > 500, chart
    volume: Any = page.evaluate(
        "Chart.getChart('chart-volume').data.datasets.map(d => d.data.reduce((a, b) => a + b, 0))"
    )
    assert volume == [completed, failed, 0]
    numbers = page.eval_on_selector_all(
        "#numbers tbody tr td:first-child", "c => c.map(x => x.textContent)"
    )
    assert sorted(numbers) == sorted(NUMBERS)
    # The staffing chart: the API's agents per hour (every call lies hours inside the range).
    now = datetime.now(UTC)
    plan = httpx.get(
        dashboard_server.base_url + "/api/v1/staffing",
        params={"since": (now - timedelta(hours=24)).isoformat(), "until": now.isoformat()},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    agents = [i["agents"] for i in plan["intervals"] if i["agents"]]
    assert sum(i["calls"] for i in plan["intervals"]) == len(calls)
    assert agents and min(agents) >= 1
    drawn: Any = page.evaluate(
        "Chart.getChart('chart-staffing').data.datasets.map(d => d.data.filter(v => v))"
    )
    assert drawn == [agents, [i["scheduled"] for i in plan["intervals"] if i["scheduled"]]]
    assert page.inner_text("#staffing-peak").startswith(f"peak {max(agents)} agent")


def test_filters_change_the_calls_table(page: Page, dashboard_server: ServerProcess) -> None:
    log_in(page, dashboard_server)
    wait_ready(page)
    assert len(call_rows(page)) == 20
    page.select_option("#filter-status", "failed")
    page.wait_for_function("() => document.querySelectorAll('#calls tbody tr').length === 4")
    assert {row[4] for row in call_rows(page)} == {"failed"}
    page.select_option("#filter-status", "")
    page.select_option("#filter-to", NUMBERS[1])
    page.wait_for_function("() => document.querySelectorAll('#calls tbody tr').length === 8")
    assert {row[2] for row in call_rows(page)} == {NUMBERS[1]}
    # The tiles follow the number filter too.
    wait_tile(page, "calls", "8")
    page.select_option("#filter-to", "")
    page.click("button[data-range='1h']")  # three calls started in the last hour
    wait_tile(page, "calls", "3")
    assert len(call_rows(page)) == 3


def test_caller_supplied_markup_shows_as_text_and_never_runs(
    page: Page, dashboard_server: ServerProcess
) -> None:
    log_in(page, dashboard_server)
    wait_ready(page)
    body = page.inner_text("#quarantine tbody pre.body")
    assert json.dumps(PAYLOAD)[1:-1] in body  # the markup as text, in the JSON it came in
    assert page.query_selector_all("#quarantine img, #quarantine script") == []
    assert page.evaluate("window.__pwned") is None


def test_data_problems_are_a_quiet_line_a_filter_and_shown_per_call(
    page: Page, dashboard_server: ServerProcess
) -> None:
    log_in(page, dashboard_server)
    wait_ready(page)
    line = page.inner_text("#problems-line")
    assert line == "1 call with data problems (fields not taken as sent)"
    rows = call_rows(page)
    failed_mos = {row[6] for row in rows if row[4] == "failed"}
    assert failed_mos == {"—"}  # no audio to score, whatever the sender sent
    page.click("#problems-line")
    page.wait_for_function("() => document.querySelectorAll('#calls tbody tr').length === 1")
    (row,) = call_rows(page)
    assert (row[6], row[8]) == ("—", "AudioInMos: missing")
    assert page.is_checked("#filter-problems")


def test_live_refresh_shows_new_calls(page: Page, dashboard_server: ServerProcess) -> None:
    page.clock.install()  # the page's clock runs on, and the test can move it a period ahead
    log_in(page, dashboard_server)
    wait_ready(page)
    count = int(tile(page, "calls"))
    now = format_datetime(datetime.now(UTC).replace(microsecond=0))
    assert dashboard_server.post(callback_fields(Timestamp=now)).status_code == 200
    page.clock.fast_forward(10_000)  # one refresh period
    wait_tile(page, "calls", str(count + 1))
