"""The lean HTTP client against a small real server: keep-alive, a connection the server
closed, chunked answers, Connection: close, and no server at all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from callpulse.errors import CallpulseError
from callpulse.lean_http import LeanClient, LeanHTTPError

Answer = Callable[[int], bytes]  # the n-th request on a connection -> raw answer


async def serve(answer: Answer, close_after: int | None = None) -> tuple[asyncio.Server, list[int]]:
    """A server answering each request with ``answer(n)``; ``connections`` counts them."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        n = 0
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))  # fmt: skip
            await reader.readexactly(length)
            writer.write(answer(n))
            await writer.drain()
            n += 1
            if close_after is not None and n >= close_after:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, connections


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def ok(body: bytes = b'{"result": "inserted"}') -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_keep_alive_reuses_one_connection() -> None:
    async def test() -> None:
        server, connections = await serve(lambda n: ok())
        port = server.sockets[0].getsockname()[1]
        client = LeanClient(f"http://127.0.0.1:{port}/cb?x=1", size=4)
        request = client.request(b"a=1", {"Content-Type": "application/x-www-form-urlencoded"})
        assert request.startswith(b"POST /cb?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
        for _ in range(5):
            assert await client.send(request) == (200, b'{"result": "inserted"}')
        assert len(connections) == 1
        await client.close()
        server.close()

    run(test)


def test_a_connection_the_server_closed_is_replaced_once() -> None:
    async def test() -> None:
        server, connections = await serve(lambda n: ok(), close_after=1)
        port = server.sockets[0].getsockname()[1]
        client = LeanClient(f"http://127.0.0.1:{port}/", size=1)
        request = client.request(b"", {})
        for _ in range(3):
            assert (await client.send(request))[0] == 200
            await asyncio.sleep(0.05)  # the server's close arrives
        assert len(connections) == 3
        await client.close()
        server.close()

    run(test)


def test_chunked_and_closing_answers() -> None:
    chunked = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnope\r\n0\r\n\r\n"
    closing = b"HTTP/1.1 503 Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"

    async def test() -> None:
        server, connections = await serve(lambda n: chunked if n == 0 else closing)
        port = server.sockets[0].getsockname()[1]
        client = LeanClient(f"http://127.0.0.1:{port}/", size=2)
        request = client.request(b"", {})
        assert await client.send(request) == (403, b"nope")
        assert await client.send(request) == (503, b"{}")
        assert await client.send(request) == (403, b"nope")  # a new connection after close
        assert len(connections) == 2
        await client.close()
        server.close()

    run(test)


def test_no_server_is_a_connect_error() -> None:
    async def test() -> None:
        client = LeanClient("http://127.0.0.1:9/", size=1)
        with pytest.raises(LeanHTTPError) as caught:
            await client.send(client.request(b"", {}))
        assert caught.value.kind == "ConnectError"

    run(test)


def test_a_url_that_is_not_http_is_one_line_naming_it() -> None:
    with pytest.raises(CallpulseError, match="--url: expected an http:// or https:// URL"):
        LeanClient("ftp://example.com/x", size=1)
