"""A real local HTTP webhook receiver that fails its first ``failures`` POSTs with 500."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
from typing import Any


def verify(secret: str, header: str, body: bytes) -> bool:
    """The check README shows a receiver (without the freshness window)."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


class Receiver:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.attempts: list[tuple[dict[str, str], bytes]] = []  # every POST, failed ones too
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.attempts.append((dict(self.headers.items()), body))
                    failing = len(receiver.attempts) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """The bodies of the POSTs answered with success."""
        with self.lock:
            return [json.loads(body) for _h, body in self.attempts[self.failures :]]
