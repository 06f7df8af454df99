"""The dashboard's test server (twenty calls, one refused request) and browser pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from playwright.sync_api import Browser, Page

from tests.support import ServerProcess, callback_fields

TOKEN = "dashboard-test-token-3b9d"
NUMBERS = ("+18005550111", "+18005550122")
# Reaches the page through the quarantine view (the body of a refused request).
PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
CHARTS = ("chart-volume", "chart-success", "chart-mos", "chart-bands", "chart-staffing")


def sent_calls() -> list[dict[str, str]]:
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


@contextmanager
def open_page(browser: Browser, width: int, timezone_id: str = "UTC") -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, accept_downloads=True, timezone_id=timezone_id
    )
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


def log_in(page: Page, server: ServerProcess, token: str = TOKEN) -> None:
    page.goto(server.base_url + "/")
    page.fill("#token", token)
    page.click("button[type=submit]")


def wait_ready(page: Page) -> int:
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=15000)
    return int(page.evaluate("document.body.dataset.firstViewMs"))


def tile(page: Page, kpi: str) -> str:
    return page.inner_text(f".tile[data-kpi='{kpi}'] .value")


def wait_tile(page: Page, kpi: str, text: str) -> None:
    page.wait_for_function(
        "([kpi, text]) => document.querySelector(`.tile[data-kpi='${kpi}'] .value`)"
        ".textContent === text",
        arg=[kpi, text],
    )


def call_rows(page: Page) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        "#calls tbody tr",
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent))",
    )
    return rows
