"""The hot path stands on its own: a callback's way to disk loads neither analytics nor the web
layer, so nothing it waits on can come from them."""

from __future__ import annotations

import subprocess
import sys

HOT_PATH = ("callpulse.ingest.pipeline", "callpulse.ingest.writer", "callpulse.metrics")


def test_the_ingest_package_imports_neither_analytics_nor_the_web_layer() -> None:
    script = (
        "import importlib, sys\n"
        f"for name in {HOT_PATH!r}: importlib.import_module(name)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('callpulse.'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert set(HOT_PATH) <= set(loaded)  # (the script did import them)
    assert [m for m in loaded if m.startswith(("callpulse.analytics", "callpulse.web"))] == []
