"""A minimal HTTP/1.1 client for `callpulse simulate`: keep-alive connections that POST an
already encoded body and read the answer by its Content-Length (or chunks). A small part of a
general client's work per request, so one process can drive a receiver at its own limit."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

from callpulse.errors import CallpulseError

MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024  # an answer larger than this is not a receiver's


class LeanHTTPError(Exception):
    """The request got no answer; ``kind`` names why as httpx would (ConnectError, ...)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class LeanClient:
    """POSTs to one URL over at most ``size`` kept-alive connections (one request each at a
    time); a request that finds its reused connection closed by the server is sent again once
    on a new one (callbacks are idempotent)."""

    def __init__(self, url: str, size: int, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CallpulseError(f"--url: expected an http:// or https:// URL, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host_header = parts.netloc.rpartition("@")[2]
        self.timeout = timeout
        self.size = size
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    def request(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        """The whole request as bytes: encode it once, send it any number of times."""
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.host_header}",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Status and body of the answer to ``request`` (from ``request()``)."""
        for attempt in (0, 1):
            reused = bool(self._idle)
            try:
                reader, writer = self._idle.pop() if reused else await self._connect()
            except (OSError, TimeoutError) as exc:
                raise LeanHTTPError("ConnectError", str(exc)) from None
            try:
                writer.write(request)
                status, keep, body = await asyncio.wait_for(_answer(reader), self.timeout)
            except TimeoutError:
                writer.close()
                raise LeanHTTPError("ReadTimeout", f"no answer within {self.timeout:g} s") from None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError) as exc:  # fmt: skip
                writer.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle connection: once more on a new one
                raise LeanHTTPError("RemoteProtocolError", str(exc) or type(exc).__name__) from None
            if keep and len(self._idle) < self.size:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return status, body
        raise AssertionError("unreachable")

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=MAX_HEAD),
            self.timeout,
        )

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _reader, writer in idle:
            writer.close()
        for _reader, writer in idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, code, *_ = status_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _chunks(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if not 0 <= length <= MAX_BODY:
            raise ValueError(f"answer of {length} bytes")
        body = await reader.readexactly(length)
    else:  # delimited by the end of the connection
        body, keep = await reader.read(MAX_BODY), False
    return int(code), keep, body


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers from a receiver
            return b"".join(parts)
        if sum(map(len, parts)) + size > MAX_BODY:
            raise ValueError("answer too large")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
