"""The dashboard in real headless Chromium against a real server: log in, tiles, charts, filters,
and a caller-supplied script that must show as text and never run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support import ServerProcess, callback_fields

TOKEN = "dashboard-test-token-3b9d"
NUMBERS = ("+18005550111", "+18005550122")
# Reaches the page through the quarantine view (the body of a refused request).
PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
CHARTS = ("chart-volume", "chart-success", "chart-mos", "chart-bands", "chart-staffing")


def _calls() -> list[dict[str, str]]:
    """Twenty calls in the last six hours: 16 completed, 4 failed; 12 to the first number; the
    first one completed without a MOS (a data problem)."""
    now = datetime.now(UTC).replace(microsecond=0)
    calls = []
    for n in range(20):
        status = "failed" if n % 5 == 4 else "completed"
        calls.append(
            callback_fields(
                From=("+14155550{:03d}" if n % 2 else "+44207946{:03d}").format(n),
                To=NUMBERS[n % 5 in (1, 3)],
                Timestamp=format_datetime(now - timedelta(minutes=15 + 17 * n)),
                CallStatus=status,
                CallDuration="0" if status == "failed" else str(40 + 10 * n),
                AudioInMos="" if n == 0 else f"{4.4 - n * 0.05:.2f}",
            )
        )
    return calls


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("dashboard")
    proc = ServerProcess(workdir, env={"CALLPULSE_API_TOKEN": TOKEN}).start()
    try:
        with httpx.Client() as client:
            for fields in _calls():
                assert proc.post(fields, client=client).status_code == 200
            unsigned = client.post(
                proc.callback_url, json={**callback_fields(), "CallerName": PAYLOAD}
            )
            assert unsigned.status_code == 403
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    tab.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    yield tab
    context.close()
    # A CSP violation, a script error or an alert() from injected markup all land here.
    assert not [p for p in problems if "401" not in p], problems


def _log_in(page: Page, server: ServerProcess, token: str = TOKEN) -> None:
    page.goto(server.base_url + "/")
    page.fill("#token", token)
    page.click("button[type=submit]")


def _wait_ready(page: Page) -> int:
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=15000)
    return int(page.evaluate("document.body.dataset.firstViewMs"))


def _tile(page: Page, kpi: str) -> str:
    return page.inner_text(f".tile[data-kpi='{kpi}'] .value")


def _wait_tile(page: Page, kpi: str, text: str) -> None:
    page.wait_for_function(
        "([kpi, text]) => document.querySelector(`.tile[data-kpi='${kpi}'] .value`)"
        ".textContent === text",
        arg=[kpi, text],
    )


def _call_rows(page: Page) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        "#calls tbody tr",
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent))",
    )
    return rows


def test_wrong_token_is_refused(page: Page, server: ServerProcess) -> None:
    _log_in(page, server, "not-the-token")
    assert "wrong token" in page.inner_text(".error")
    assert page.query_selector("#tiles") is None
    assert page.context.cookies() == []


def test_dashboard_shows_the_numbers_and_draws_the_charts(
    page: Page, server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_in(page, server)
    first_view_ms = _wait_ready(page)
    with capsys.disabled():
        print(f"\ndashboard first view complete after {first_view_ms} ms (loopback)")
    calls = _calls()
    completed = sum(c["CallStatus"] == "completed" for c in calls)
    failed = len(calls) - completed
    assert _tile(page, "calls") == str(len(calls))
    assert _tile(page, "success_rate") == f"{completed / (completed + failed) * 100:.1f} %"
    durations = [int(c["CallDuration"]) for c in calls if c["CallStatus"] == "completed"]
    acd = round(sum(durations) / len(durations))
    assert _tile(page, "acd") == f"{acd // 60} m {acd % 60} s"
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
        server.base_url + "/api/v1/staffing",
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


def test_filters_change_the_calls_table(page: Page, server: ServerProcess) -> None:
    _log_in(page, server)
    _wait_ready(page)
    assert len(_call_rows(page)) == 20
    page.select_option("#filter-status", "failed")
    page.wait_for_function("() => document.querySelectorAll('#calls tbody tr').length === 4")
    assert {row[4] for row in _call_rows(page)} == {"failed"}
    page.select_option("#filter-status", "")
    page.select_option("#filter-to", NUMBERS[1])
    page.wait_for_function("() => document.querySelectorAll('#calls tbody tr').length === 8")
    assert {row[2] for row in _call_rows(page)} == {NUMBERS[1]}
    # The tiles follow the number filter too.
    _wait_tile(page, "calls", "8")
    page.select_option("#filter-to", "")
    page.click("button[data-range='1h']")  # three calls started in the last hour
    _wait_tile(page, "calls", "3")
    assert len(_call_rows(page)) == 3


def test_caller_supplied_markup_shows_as_text_and_never_runs(
    page: Page, server: ServerProcess
) -> None:
    _log_in(page, server)
    _wait_ready(page)
    body = page.inner_text("#quarantine tbody pre.body")
    assert json.dumps(PAYLOAD)[1:-1] in body  # the markup as text, in the JSON it came in
    assert page.query_selector_all("#quarantine img, #quarantine script") == []
    assert page.evaluate("window.__pwned") is None


def test_data_problems_are_a_quiet_line_a_filter_and_shown_per_call(
    page: Page, server: ServerProcess
) -> None:
    _log_in(page, server)
    _wait_ready(page)
    line = page.inner_text("#problems-line")
    assert line == "1 call with data problems (fields not taken as sent)"
    rows = _call_rows(page)
    failed_mos = {row[6] for row in rows if row[4] == "failed"}
    assert failed_mos == {"—"}  # no audio to score, whatever the sender sent
    page.click("#problems-line")
    page.wait_for_function("() => document.querySelectorAll('#calls tbody tr').length === 1")
    (row,) = _call_rows(page)
    assert (row[6], row[8]) == ("—", "AudioInMos: missing")
    assert page.is_checked("#filter-problems")


def test_live_refresh_shows_new_calls(page: Page, server: ServerProcess) -> None:
    _log_in(page, server)
    _wait_ready(page)
    count = int(_tile(page, "calls"))
    now = format_datetime(datetime.now(UTC).replace(microsecond=0))
    assert server.post(callback_fields(Timestamp=now)).status_code == 200
    _wait_tile(page, "calls", str(count + 1))  # within one refresh period (10 s)
