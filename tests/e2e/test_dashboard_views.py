"""The dashboard as an operations lead uses it: on a phone and a wide screen, shared by URL,
in the call center's time zone, sparse data drawn honestly, data taken away as CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Page

from callpulse.alerts.engine import run_round
from callpulse.alerts.rules import Rule
from callpulse.analytics import Analytics
from callpulse.config import Settings
from tests.e2e.dashboard import NUMBERS, TOKEN, log_in, open_page, sent_calls, tile, wait_ready
from tests.support import ServerProcess

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _api(server: ServerProcess, path: str, **params: str) -> Any:
    response = httpx.get(f"{server.base_url}/api/v1/{path}", params=params, headers=AUTH)
    response.raise_for_status()
    return response.json()


def _overflow(page: Page) -> dict[str, Any]:
    """The page's own width against the viewport, and every table wider than its card."""
    result: dict[str, Any] = page.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            viewport: window.innerWidth,
            spilling: [...document.querySelectorAll('table')].filter(t => {
                const card = t.closest('.card').getBoundingClientRect();
                const wrap = t.parentElement.getBoundingClientRect();
                return wrap.left < card.left - 0.5 || wrap.right > card.right + 0.5;
            }).map(t => t.id),
            wrapped: [...document.querySelectorAll('td.nowrap, td.num')]
                .filter(td => {
                    const text = document.createRange();
                    text.selectNodeContents(td);
                    return new Set([...text.getClientRects()].map(r => Math.round(r.top))).size > 1;
                })
                .map(td => td.textContent),
        })"""
    )
    return result


@pytest.mark.parametrize("width", [360, 390])
def test_a_phone_never_scrolls_sideways(
    browser: Browser, dashboard_server: ServerProcess, width: int
) -> None:
    with open_page(browser, width) as page:
        log_in(page, dashboard_server)
        wait_ready(page)
        found = _overflow(page)
        assert found["page"] <= found["viewport"] == width, found
        assert found["spilling"] == [], found
        assert found["wrapped"] == [], found  # "3 m 13 s" on one line


def test_a_wide_screen_keeps_the_header_on_one_row_with_a_custom_range(
    page: Page, dashboard_server: ServerProcess
) -> None:
    log_in(page, dashboard_server)
    wait_ready(page)
    page.click("button[data-range='custom']")
    tops = page.eval_on_selector_all(
        "header.top > *:not([hidden])", "nodes => nodes.map(n => n.getBoundingClientRect().top)"
    )
    assert max(tops) - min(tops) < 20, tops
    # The inputs start at the range on screen, on a 24-hour clock.
    since = page.input_value("#custom-since")
    assert datetime.strptime(since, "%Y-%m-%d %H:%M")


def _one_call_window(server: ServerProcess) -> tuple[str, str, datetime]:
    newest = parsedate_to_datetime(sent_calls()[0]["Timestamp"])
    return (
        (newest - timedelta(minutes=5)).isoformat(),
        (newest + timedelta(minutes=5)).isoformat(),
        newest,
    )


def test_a_chart_with_one_point_draws_it(page: Page, dashboard_server: ServerProcess) -> None:
    log_in(page, dashboard_server)
    wait_ready(page)
    since, until, _ = _one_call_window(dashboard_server)
    page.goto(f"{dashboard_server.base_url}/?{urlencode({'since': since, 'until': until})}")
    wait_ready(page)
    page.wait_for_function(
        "() => document.querySelector(\".tile[data-kpi='calls'] .value\").textContent === '1'"
    )
    drawn = page.evaluate(
        """() => {
            const chart = Chart.getChart('chart-success');
            const data = chart.data.datasets[0].data;
            const i = data.findIndex(v => v !== null);
            const point = chart.getDatasetMeta(0).data[i];
            const ratio = window.devicePixelRatio;
            const pixel = chart.ctx.getImageData(
                Math.round(point.x * ratio), Math.round(point.y * ratio), 1, 1).data;
            return {values: data.filter(v => v !== null).length,
                    nulls: data.filter(v => v === null).length,
                    radius: point.options.radius, alpha: pixel[3],
                    gaps: chart.data.datasets[0].spanGaps};
        }"""
    )
    assert drawn["values"] == 1 and drawn["nulls"] > 0, drawn
    assert drawn["radius"] > 0 and drawn["alpha"] > 0, drawn  # a visible dot, not nothing
    assert drawn["gaps"] is False  # no straight line across minutes without calls


def test_the_view_survives_a_reload_and_a_shared_link(
    page: Page, dashboard_server: ServerProcess
) -> None:
    log_in(page, dashboard_server)
    wait_ready(page)
    page.click("button[data-range='7d']")
    page.select_option("#filter-to", NUMBERS[0])
    page.select_option("#filter-status", "failed")
    page.click("#numbers th[data-key='calls']")
    page.wait_for_function("() => location.search.includes('status=failed')")
    url = page.url
    assert "range=7d" in url and "to=%2B18005550111" in url and "sort_numbers=-calls" in url
    page.reload()
    wait_ready(page)
    assert page.get_attribute("button[data-range='7d']", "aria-pressed") == "true"
    assert page.input_value("#filter-to") == NUMBERS[0]
    assert page.input_value("#filter-status") == "failed"
    page.wait_for_function(
        "() => document.querySelector(\".tile[data-kpi='calls'] .value\").textContent === '12'"
    )
    assert page.get_attribute("#numbers th[data-key='calls']", "aria-sort") == "descending"


def test_the_time_zone_switch_moves_the_day_boundaries(
    browser: Browser, dashboard_server: ServerProcess
) -> None:
    with open_page(browser, 1440, timezone_id="Asia/Tokyo") as page:
        log_in(page, dashboard_server)
        wait_ready(page)
        page.click("button[data-range='30d']")
        with page.expect_response(lambda r: "/timeseries" in r.url and "tz=Asia" in r.url) as got:
            page.select_option("#filter-tz", "Asia/Tokyo")
        days = got.value.json()
        assert {p["bucket_start"][11:19] for p in days} == {"15:00:00"}  # midnight at +09:00
        assert "tz=Asia%2FTokyo" in page.url
        # The calls table shows local times: the newest call, in Japan.
        newest = _api(dashboard_server, "calls", limit="1")["calls"][0]["started_at"]
        local = (datetime.fromisoformat(newest) + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M:%S")
        page.wait_for_function(
            "t => document.querySelector('#calls tbody tr td').textContent === t", arg=local
        )


def _download(page: Page, what: str) -> list[dict[str, str]]:
    with page.expect_download() as info:
        page.click(f"button[data-csv='{what}']")
    text = info.value.path().read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _same(csv_value: str, api_value: object) -> bool:
    if api_value is None:
        return csv_value == ""
    if isinstance(api_value, float):
        return float(csv_value) == pytest.approx(api_value)
    return csv_value == str(api_value)


def test_csv_downloads_match_the_api(page: Page, dashboard_server: ServerProcess) -> None:
    log_in(page, dashboard_server)
    wait_ready(page)
    numbers = _download(page, "numbers")
    api_numbers = {row["to"]: row for row in _api(dashboard_server, "numbers")}
    assert {row["to"] for row in numbers} == set(api_numbers)
    for row in numbers:
        want = api_numbers[row["to"]]
        for column, value in row.items():
            assert _same(value, want[column]), (column, value, want[column])
    calls = _download(page, "calls")
    api_calls = {c["call_sid"]: c for c in _api(dashboard_server, "calls", limit="50")["calls"]}
    assert {c["call_sid"] for c in calls} == set(api_calls)
    for row in calls:
        want = api_calls[row["call_sid"]]
        for column in ("from", "to", "status", "duration_s", "mos", "started_at"):
            assert _same(row[column], want[column]), (column, row[column], want[column])
    assert int(tile(page, "calls")) == len(calls)


def test_firing_alerts_show_in_a_banner_and_the_alerts_view(
    page: Page, dashboard_server: ServerProcess
) -> None:
    # The server's own "success-rate" rule (metric and severity), over the hours of the calls.
    rule = Rule("success-rate", "success_rate", window=timedelta(hours=7), min_calls=5,
                trigger=0.9, reset=0.95, severity="critical")  # fmt: skip
    with dashboard_server.store() as store:
        run_round(store, Analytics(store, Settings()), [rule], datetime.now(UTC))
    log_in(page, dashboard_server)
    wait_ready(page)
    banner = page.text_content("#alerts-banner") or ""
    assert banner.startswith("1 alert firing: ")
    assert "success-rate all calls: 80.0 % (threshold 90.0 %) since " in banner
    (active,) = page.eval_on_selector_all(
        "#alerts-active tbody tr", "rows => rows.map(r => Array.from(r.cells, c => c.textContent))"
    )
    assert active[:6] == ["success-rate", "critical", "all calls", "firing", "80.0 %", "90.0 %"]
    history = page.eval_on_selector_all(
        "#alerts-history tbody tr td:nth-child(4)", "cells => cells.map(c => c.textContent)"
    )
    assert history == ["firing"]
