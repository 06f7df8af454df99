"""Where `serve` logs go: standard error as text or JSON lines, written by a thread of their own
so that a slow terminal or pipe never holds up the event loop that answers callbacks."""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"
ACCESS_LOGGER = "callpulse.access"
_listener: QueueListener | None = None


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and a record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: str) -> None:
    """Once per process: warnings and the access log (INFO) through a queue to standard error."""
    global _listener
    if _listener is not None:
        return
    output = logging.StreamHandler(sys.stderr)
    output.setFormatter(formatter(log_format))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger()
    root.handlers[:] = [QueueHandler(lines)]
    root.setLevel(logging.WARNING)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)
    _listener = QueueListener(lines, output)
    _listener.start()
    atexit.register(_listener.stop)  # the last lines are written before the process ends
