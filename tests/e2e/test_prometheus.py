"""The shipped Prometheus files (docs/prometheus/) against Debian's real `prometheus` and
`promtool`: they load, their unit tests pass, every metric they read is one callpulse exposes,
and a live Prometheus scraping a live `callpulse serve` with the token sees a shipped rule fire.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from callpulse.config import Settings
from callpulse.store import open_store
from callpulse.web.app import create_app
from tests.support import ServerProcess, callback_fields, free_port, terminate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "prometheus"
RULES = DOCS / "callpulse-rules.yml"
TOKEN = "prometheus-scrape-token-5d1f0a"
# Series names in PromQL: not part of a recording rule's name (those contain colons).
_SERIES = re.compile(r"(?<![\w:])callpulse_\w+(?![\w:(])")
_RECORDED = re.compile(r"(?<![\w:])\w*:[\w:]+(?![\w(])")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's prometheus package (scripts/test does)")
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def _rule_count() -> int:
    return sum(len(group["rules"]) for group in yaml.safe_load(RULES.read_text())["groups"])


def test_promtool_accepts_the_shipped_rules() -> None:
    result = _run(_binary("promtool"), "check", "rules", str(RULES), cwd=DOCS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {_rule_count()} rules found" in result.stdout


def test_promtool_accepts_the_shipped_configuration(tmp_path: Path) -> None:
    # Laid out as the configuration's comment says: beside the rules and the token file.
    for name in ("prometheus.yml", "callpulse-rules.yml"):
        shutil.copy(DOCS / name, tmp_path / name)
    (tmp_path / "callpulse-token").write_text(TOKEN + "\n")
    result = _run(_binary("promtool"), "check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {_rule_count()} rules found" in result.stdout


@pytest.mark.slow
def test_the_rules_unit_tests_pass() -> None:
    files = ("callpulse-rules.test.yml", "callpulse-rules.week.test.yml")
    result = _run(_binary("promtool"), "test", "rules", *files, cwd=DOCS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


def _rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


@pytest.fixture
def exposed(tmp_path: Path) -> set[str]:
    """Every sample name /metrics shows the API token (histogram buckets, counters' _total)."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'callpulse.db'}",
        spool_dir=tmp_path / "spool",
        api_token=TOKEN,
    )
    with open_store(settings) as store:
        store.upgrade()
    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_metric_the_shipped_files_read_is_exposed(exposed: set[str], source: str) -> None:
    expressions = _rule_expressions() if source == "rules" else _dashboard_expressions()
    used = {name for expr in expressions for name in _SERIES.findall(expr)}
    assert {"callpulse_calls_total", "callpulse_callbacks_total"} <= used
    assert used - exposed == set()
    recorded = {
        rule["record"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    referenced = {name for expr in expressions for name in _RECORDED.findall(expr)}
    assert referenced - recorded == set()


def test_every_alert_has_its_section_in_the_readme() -> None:
    headings = {
        line.removeprefix("### ").lower()
        for line in (DOCS / "README.md").read_text().splitlines()
        if line.startswith("### ")
    }
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    assert len(alerts) == len(headings)
    for rule in alerts:
        anchor = rule["annotations"]["runbook"].partition("#")[2]
        assert anchor == rule["alert"].lower() and anchor in headings, rule["alert"]


def test_the_dashboard_is_importable() -> None:
    """What Grafana's import needs: the data source as an input, unique ids, panels that do not
    overlap on the 24-column grid."""
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        sources = [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
        assert all(source["uid"] == "${DS_PROMETHEUS}" for source in sources), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


class PrometheusProcess:
    """Debian's `prometheus` on a free loopback port, its data in ``workdir``."""

    def __init__(self, workdir: Path, config: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / "prometheus.log"
        self.args = [
            _binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> PrometheusProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready in {timeout} s: {self.log_path.read_text()}")

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.base_url}/api/v1/{path}", params=params, timeout=5)
        response.raise_for_status()
        return response.json()["data"]

    def stop(self) -> None:
        terminate(self.proc)


def _quick_rules(directory: Path) -> Path:
    """The shipped rules with every `for:` cut to 1 s, so a test sees them fire in seconds;
    the expressions, thresholds and labels are the shipped ones."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    path = directory / "callpulse-rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, env={"CALLPULSE_API_TOKEN": TOKEN}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prometheus(tmp_path: Path, receiver: ServerProcess) -> Iterator[PrometheusProcess]:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "callpulse-token").write_text(TOKEN + "\n")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(_quick_rules(directory))],
        "scrape_configs": [
            {
                "job_name": "callpulse",
                "authorization": {"type": "Bearer", "credentials_file": "callpulse-token"},
                "static_configs": [{"targets": [f"127.0.0.1:{receiver.port}"]}],
            }
        ],
    }
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    server = PrometheusProcess(directory, directory / "prometheus.yml").start()
    try:
        yield server
    finally:
        server.stop()


def _wait_for(what: str, check: Any, timeout: float, explain: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"{what} not seen within {timeout} s: {explain()}")


def _firing(prometheus: PrometheusProcess) -> set[str]:
    return {
        alert["labels"]["alertname"]
        for alert in prometheus.api("alerts")["alerts"]
        if alert["state"] == "firing"
    }


def _diagnosis(prometheus: PrometheusProcess) -> str:
    targets = [
        (target["health"], target["lastError"])
        for target in prometheus.api("targets")["activeTargets"]
    ]
    broken = [
        (rule["name"], rule["lastError"])
        for group in prometheus.api("rules")["groups"]
        for rule in group["rules"]
        if rule.get("lastError")
    ]
    alerts = [(a["labels"]["alertname"], a["state"]) for a in prometheus.api("alerts")["alerts"]]
    return f"targets {targets}, rule errors {broken}, alerts {alerts}"


@pytest.mark.slow
def test_a_live_prometheus_scraping_with_the_token_fires_the_shipped_rules(
    receiver: ServerProcess, prometheus: PrometheusProcess
) -> None:
    # Calls by status are shown to the token only: present means the credentials file works.
    # Scraped at 0 before any call, so the first calls already make an increase.
    _wait_for(
        "a scrape with the token",
        lambda: prometheus.api("query", query='callpulse_calls_total{status="failed"} == 0')[
            "result"
        ],
        15,
        lambda: _diagnosis(prometheus),
    )
    with httpx.Client() as client:
        for index in range(30):  # a success rate of 0.5 over 30 calls
            if index % 2:
                fields = callback_fields(CallStatus="failed", CallDuration="", AudioInMos="")
            else:
                fields = callback_fields()
            assert receiver.post(fields, client=client).status_code == 200
        for _ in range(6):
            refused = receiver.post(callback_fields(), key="not-the-signing-key", client=client)
            assert refused.status_code == 403
    wanted = {"CallpulseSuccessRateLow", "CallpulseSignatureRejections"}
    _wait_for(
        f"{sorted(wanted)} firing",
        lambda: wanted <= _firing(prometheus),
        30,
        lambda: _diagnosis(prometheus),
    )
    rate = prometheus.api("query", query="job:callpulse_success_rate:ratio15m")["result"]
    assert [float(sample["value"][1]) for sample in rate] == [pytest.approx(0.5)]
    firing = _firing(prometheus)
    assert not firing & {"CallpulseReceiverDown", "CallpulseScrapedWithoutToken"}, firing
    # Every dashboard query runs on the real thing and shows something.
    for expr in _dashboard_expressions():
        result = prometheus.api("query", query=expr.replace("$job", "callpulse"))["result"]
        assert result, f"dashboard query {expr} is empty"
