"""uvicorn's httptools protocol with the two limits it lacks: the size of a request's head (the
request line and headers) and the time a request may take to arrive.

Without them a client can hold a connection open for ever by sending a byte now and then, or
make the server buffer megabytes of headers. A real sender's callback arrives in milliseconds
(and it gives up itself after 5 s), so the limits cost it nothing.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from callpulse.config import load_settings


class _Refused(Exception):
    """Stops the parser once the request was answered here."""


@functools.cache
def _limits() -> tuple[int, float]:
    # From the environment, as the app of every worker process reads its settings.
    settings = load_settings()
    return settings.max_header_bytes, settings.request_timeout_s


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes, self.request_timeout_s = _limits()
        self._head_bytes = 0  # received while the head is incomplete: an upper bound
        self._exact_head_bytes = 0  # of the request line and the headers parsed so far
        self._in_head = False  # from a request's first byte to the end of its headers
        self._receiving = False  # from a request's first byte to the end of its body
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    # -- the time limit ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_request()  # a connection that never sends a byte is timed out too

    def _start_request(self) -> None:
        self._receiving = self._in_head = True
        self._head_bytes = self._exact_head_bytes = 0
        self._deadline = self.loop.call_later(self.request_timeout_s, self._too_slow)

    def _stop_clock(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self._refuse(408, f"the request did not arrive within {self.request_timeout_s:g} s")
        else:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered; the connection is closing
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and not self._refused and self._head_bytes > self.max_header_bytes:
            self._refuse(431, self._too_large_message())

    def on_message_complete(self) -> None:
        self._stop_clock()
        self._receiving = False
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    # -- the size limit ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self._receiving:  # a further request on a kept-alive connection
            self._start_request()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._exact_head_bytes += size
        if self._exact_head_bytes > self.max_header_bytes:
            self._refuse(431, self._too_large_message())
            raise _Refused  # stops the parser: nothing of this request reaches the app

    def _too_large_message(self) -> str:
        return f"the request line and headers exceed {self.max_header_bytes} bytes"

    # -- answers -----------------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with the API's error JSON and close the connection."""
        self._refused = True
        self._stop_clock()
        body = json.dumps({"error": message, "parameter": None}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # else the parser only stopped because of _Refused: answered
            super().send_400_response(msg)
