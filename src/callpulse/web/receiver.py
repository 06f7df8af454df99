"""The status callback endpoint as a plain ASGI app: the body read within its limit, handed to the
Ingestor, answered. No Request, URL or Response objects and no middleware: the app serves this
path before its own stack (``CallpulseApp``), since this is what every sender's request costs."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from callpulse.ingest.gate import RawCallback
from callpulse.ingest.pipeline import Answer, Ingestor
from callpulse.store.base import SaveResult
from callpulse.web.access_log import AccessLog
from callpulse.web.body import receive_limited

log = logging.getLogger(__name__)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_JSON = (b"content-type", b"application/json")
_RESULT_BODIES = {r.value: json.dumps({"result": r.value}).encode() for r in SaveResult}
_FAILED = json.dumps({"error": "the callback could not be handled; retry later"}).encode()


def _encode(body: dict[str, Any]) -> bytes:
    if len(body) == 1 and "result" in body:  # the common answers, encoded once
        return _RESULT_BODIES[body["result"]]
    return json.dumps(body).encode()


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-case names (as ASGI servers give them); of a repeated header, the first value."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


def signed_url(scope: Scope, headers: dict[str, str], public_url: str) -> str:
    """The URL the sender called: the configured public base + path + query, else as seen
    (scheme, Host header or server address, path, query), as Starlette's ``URL`` spells it."""
    query = scope.get("query_string", b"").decode("utf-8", "replace")
    path: str = scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    tail = path + (f"?{query}" if query else "")
    if public_url:
        return public_url + tail
    scheme = str(scope.get("scheme", "http"))
    host = headers.get("host", "")
    if not host and scope.get("server"):
        name, port = scope["server"]
        name = f"[{name}]" if ":" in name and not name.startswith("[") else str(name)
        host = name if port == _DEFAULT_PORTS.get(scheme) else f"{name}:{port}"
    return f"{scheme}://{host}{tail}" if host else tail


async def _answer(send: Send, status: int, body: bytes) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [_JSON, length]})
    await send({"type": "http.response.body", "body": body})


class CallbackReceiver:
    """GET and POST of status callbacks; HEAD, a reachability probe, is answered 200 with
    nothing kept."""

    def __init__(self, ingestor: Ingestor, public_url: str, access_log: AccessLog) -> None:
        self.ingestor, self.public_url, self.access_log = ingestor, public_url, access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope["client"][0] if scope.get("client") else "?"
        if scope["method"] == "HEAD":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            answer = await self._handle(scope, receive, client)
        except ClientDisconnect:
            # Nothing was handled and nobody listens for an answer: one line, no traceback.
            log.warning("client %s left before its request body was complete", client)
            await _answer(send, 400, b"")
            return
        except Exception as exc:  # noqa: BLE001 (a defect: one line per request; the sender retries)
            log.error("callback from %s not handled: %s: %s", client, type(exc).__name__, exc)
            await _answer(send, 500, _FAILED)
            return
        await _answer(send, answer.status, _encode(answer.body))

    async def _handle(self, scope: Scope, receive: Receive, client: str) -> Answer:
        headers = _headers(scope)
        limit = self.ingestor.gate.max_body_bytes
        body, size = await receive_limited(receive, limit, headers.get("content-length", ""))
        raw = RawCallback(
            method=scope["method"],
            url=signed_url(scope, headers, self.public_url),
            headers=headers,
            body=body,
            body_size=size,
        )
        answer = await self.ingestor.handle(raw)
        self.access_log.record(raw, answer, client)
        return answer
