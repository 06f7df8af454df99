"""The dashboard's page shell carries the settings the page needs, escaped."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.web.app import create_app
from tests.web.conftest import TOKEN


class _Body(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.attrs = dict(attrs)


@pytest.fixture
def berlin(settings: Settings) -> Iterator[TestClient]:
    tuned = dataclasses.replace(
        settings, timezone="Europe/Berlin", target_success_rate=0.9, max_poor_rate=0.08
    )
    with open_store(tuned) as store:
        store.upgrade()
    with TestClient(create_app(tuned)) as client:
        yield client


def test_the_page_carries_the_time_zone_and_thresholds(berlin: TestClient) -> None:
    logged_in = berlin.post(
        "/login", data={"token": TOKEN}, headers={"Origin": "http://testserver"}
    )
    assert logged_in.status_code == 200  # the redirect to the page, followed
    page = berlin.get("/")
    assert page.status_code == 200
    parser = _Body()
    parser.feed(page.text)
    assert parser.attrs["data-timezone"] == "Europe/Berlin"
    assert (parser.attrs["data-target-success"], parser.attrs["data-max-poor"]) == ("0.9", "0.08")
