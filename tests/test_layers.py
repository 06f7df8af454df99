"""Arrows run down the architecture: a callback's way to disk loads neither analytics nor the
web layer, and the emulator shares the web layer's body reader without loading the app."""

from __future__ import annotations

import subprocess
import sys

HOT_PATH = ("callpulse.ingest.pipeline", "callpulse.ingest.writer", "callpulse.metrics")


def loaded_by(*modules: str) -> list[str]:
    """The callpulse modules a fresh interpreter has loaded after importing ``modules``."""
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('callpulse.'))))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return run.stdout.split()


def test_the_ingest_package_imports_neither_analytics_nor_the_web_layer() -> None:
    loaded = loaded_by(*HOT_PATH)
    assert set(HOT_PATH) <= set(loaded)  # (the script did import them)
    assert [m for m in loaded if m.startswith(("callpulse.analytics", "callpulse.web"))] == []


def test_the_emulator_loads_only_the_body_reader_of_the_web_layer() -> None:
    loaded = loaded_by("callpulse.signalwire.emulator.app")
    assert "callpulse.signalwire.emulator.app" in loaded
    assert [m for m in loaded if m.startswith("callpulse.web")] == [
        "callpulse.web",
        "callpulse.web.body",
    ]
    assert [m for m in loaded if m.startswith(("callpulse.ingest", "callpulse.analytics"))] == []
