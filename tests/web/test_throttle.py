"""The log-in's throttle: a few wrong tokens per client and minute, then 429 until it is over."""

from __future__ import annotations

from starlette.testclient import TestClient

from callpulse.web.auth import SESSION_COOKIE
from callpulse.web.throttle import FailureThrottle
from tests.web.conftest import TOKEN


def test_after_five_wrong_tokens_the_login_answers_429_with_retry_after(
    client: TestClient,
) -> None:
    for _ in range(5):
        assert client.post("/login", data={"token": "guess"}).status_code == 401
    for token in ("guess", TOKEN):  # the right token too: or guessing would go on unseen
        refused = client.post("/login", data={"token": token}, follow_redirects=False)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "too many wrong tokens from your address: try again in" in refused.text
        assert SESSION_COOKIE not in refused.cookies


def test_other_clients_are_not_throttled(client: TestClient) -> None:
    for _ in range(6):
        client.post("/login", data={"token": "guess"})
    other = TestClient(client.app, client=("192.0.2.7", 40000))
    answer = other.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert answer.status_code == 303


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_may_try_again_once_its_window_is_over() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=2, window_s=60, clock=clock)
    throttle.failed("a")
    assert throttle.retry_after("a") is None
    throttle.failed("a")
    clock.now += 20
    assert throttle.retry_after("a") == 40
    clock.now += 40
    assert throttle.retry_after("a") is None


def test_the_number_of_clients_kept_is_bounded() -> None:
    throttle = FailureThrottle(limit=1, window_s=60, max_clients=3, clock=Clock())
    for client in ("a", "b", "c", "d"):
        throttle.failed(client)
    assert throttle.retry_after("a") is None  # forgotten: the least recent
    assert all(throttle.retry_after(client) == 60 for client in ("b", "c", "d"))
    assert len(throttle._failures) == 3
