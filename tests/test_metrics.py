"""Metrics shared by `serve --workers N`: what a worker that died leaves behind."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from callpulse import metrics
from callpulse.ingest import gate, pipeline

WORKER = """
import sys
from callpulse import metrics
from callpulse.web import kpi_gauges
metrics.SPOOL_DEPTH.set(float(sys.argv[1]))
metrics.DATABASE_UP.set(float(sys.argv[2]))
metrics.outcome("inserted").inc(5)
kpi_gauges.LAST_HOUR.labels("calls").set(3)
print("set", flush=True)
sys.stdin.read()  # stays alive until its stdin closes
"""


def _worker(directory: Path, spool_depth: int, database_up: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(spool_depth), str(database_up)],
        env={**os.environ, metrics.MULTIPROC_ENV: str(directory)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "set\n"
    return proc


def _samples(text: bytes) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
        if sample.name in {"callpulse_spool_depth", "callpulse_database_up"}
        or sample.labels.get("outcome") == "inserted"
    }


def test_a_dead_workers_gauges_leave_the_sums_and_its_counters_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    crashed, alive = _worker(tmp_path, 7, 0), _worker(tmp_path, 2, 1)
    try:
        assert _samples(metrics.exposition()) == {
            "callpulse_spool_depth": 9,
            "callpulse_database_up": 0,
            "callpulse_callbacks_total": 10,
        }
        crashed.kill()
        crashed.wait()
        assert _samples(metrics.exposition()) == {
            "callpulse_spool_depth": 2,
            "callpulse_database_up": 1,
            "callpulse_callbacks_total": 10,
        }
    finally:
        for proc in (crashed, alive):
            proc.kill()
            proc.wait()


def test_without_kpis_the_multiprocess_exposition_leaves_out_the_kpi_families(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    worker = _worker(tmp_path, 1, 1)
    try:
        everything = _names(metrics.exposition())
        operational = _names(metrics.exposition(kpis=False))
    finally:
        worker.kill()
        worker.wait()
    assert "callpulse_last_hour" in everything
    assert operational == everything - metrics.KPI_FAMILIES
    assert {"callpulse_callbacks", "callpulse_spool_depth", "callpulse_database_up"} <= operational


def _names(text: bytes) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text.decode())}


def test_a_fresh_worker_shows_every_label_of_every_counter_at_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from callpulse import metrics; print(1, flush=True); sys.stdin.read()",
        ],
        env={**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "1\n"
        text = metrics.exposition().decode()
    finally:
        proc.kill()
        proc.wait()
    counters = {
        (sample.name, *sample.labels.values()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    expected = {
        **{("callpulse_callbacks_total", name): 0.0 for name in metrics.OUTCOMES},
        **{("callpulse_data_problems_total", name): 0.0 for name in metrics.PROBLEM_FIELDS},
        **{("callpulse_calls_total", name): 0.0 for name in metrics.CALL_STATUSES},
        ("callpulse_quarantine_shed_total",): 0.0,
    }
    assert counters == expected


def _outcomes_named_in_ingest() -> set[str]:
    """Rejection reasons (second argument of Rejected) and outcome() names written in ingest."""
    names = set()
    source = inspect.getsource(gate) + inspect.getsource(pipeline)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            callee = ast.unparse(node.func)
            if callee in {"Rejected", "metrics.outcome"}:
                argument = node.args[1 if callee == "Rejected" else 0]
                if isinstance(argument, ast.Constant):
                    names.add(argument.value)
    return names


def test_every_outcome_ingest_counts_is_initialised() -> None:
    named = _outcomes_named_in_ingest()
    assert {"too_large", "unsupported", "signature", "invalid", "unavailable"} <= named
    assert named <= set(metrics.OUTCOMES)
