"""The status callback endpoint: read the body within its limit, hand it to the Ingestor."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from callpulse.ingest.gate import RawCallback
from callpulse.ingest.pipeline import Ingestor
from callpulse.store.base import SaveResult
from callpulse.web.access_log import AccessLog
from callpulse.web.body import read_limited


def _encode(body: dict[str, Any]) -> bytes:
    if len(body) == 1 and "result" in body:  # the common answers, encoded once
        return _RESULT_BODIES[body["result"]]
    return json.dumps(body).encode()


_RESULT_BODIES = {r.value: json.dumps({"result": r.value}).encode() for r in SaveResult}


def signed_url(request: Request, public_url: str) -> str:
    """The URL the sender called: the configured public base + path + query, else as seen."""
    if not public_url:
        return str(request.url)
    query = request.url.query
    return public_url + request.url.path + (f"?{query}" if query else "")


def make_endpoint(
    ingestor: Ingestor, public_url: str, access_log: AccessLog
) -> Callable[[Request], Awaitable[Response]]:
    async def callback_endpoint(request: Request) -> Response:
        if request.method == "HEAD":  # a reachability probe, not a callback: nothing to keep
            return Response(status_code=200)
        body, size = await read_limited(request, ingestor.gate.max_body_bytes)
        raw = RawCallback(
            method=request.method,
            url=signed_url(request, public_url),
            headers=dict(request.headers),
            body=body,
            body_size=size,
        )
        answer = await ingestor.handle(raw)
        access_log.record(raw, answer, request.client.host if request.client else "?")
        return Response(
            _encode(answer.body), status_code=answer.status, media_type="application/json"
        )

    return callback_endpoint
