"""Fixtures of the dashboard tests: a real server with known calls, and real Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.dashboard import PAYLOAD, TOKEN, open_page, sent_calls
from tests.support import ServerProcess, callback_fields


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("dashboard")
    proc = ServerProcess(workdir, env={"CALLPULSE_API_TOKEN": TOKEN}).start()
    try:
        with httpx.Client() as client:
            for fields in sent_calls():
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
    with open_page(browser, 1440) as tab:
        yield tab
