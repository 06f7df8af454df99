"""A seeded, bounded fuzz run against a real `callpulse serve`, on SQLite and on PostgreSQL.

Malformed bodies (bytes, truncated, huge numbers, deep nesting, NaN, lone surrogates, NUL and
control characters, invalid UTF-8, duplicated keys, ``a=1&&b=2``, raw ``+``), odd content types
and charsets, odd methods, headers, paths and query strings, unsigned requests and requests
signed by the official SignalWire / Twilio validators over random field values.

What must hold: no 5xx, ever; every refusal on the callback path is in the quarantine; every
callback answered 200 is stored exactly once; every export format still works; no traceback in
the log. The seed is fixed, so a failure reproduces: ``FUZZ_SEED`` (env) picks another run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pyarrow.parquet as pq
import pytest
from signalwire.request_validator import RequestValidator as SignalWireValidator
from twilio.request_validator import RequestValidator as TwilioValidator

from tests.support import (
    ACCOUNT_SID,
    BACKENDS,
    EXAMPLE_PAYLOAD,
    SIGNING_KEY,
    ServerProcess,
    backend_database,
)

SEED = int(os.environ.get("FUZZ_SEED", "20240404"))
SEQUENTIAL = 1500  # per backend, over one keep-alive client
CONCURRENT = 300  # per backend, 8 threads sharing a client pool
CALLBACK_PATH = "/callbacks/call-status"
FORM = "application/x-www-form-urlencoded"
CALLBACK_STATUSES = {200, 400, 403, 413, 415}  # what the endpoint answers (README, ingest/gate.py)
QUARANTINE_DEADLINE_S = 20.0

Key = tuple[str, str]  # (AccountSid, CallSid)

# -- hostile material ------------------------------------------------------------------------------

HOSTILE_TEXT = [
    "",
    " ",
    "+",
    " 15551234567",
    "+15551234567",
    "+4420 7183 8750",
    "sip:alice@example.com",
    "client:bob",
    "anonymous",
    "\x00",
    "a\x00b",
    "\x1b[31mred\x1b[0m",
    "\r\n\r\nX-Injected: 1",
    "\t\x0b\x0c\x7f",
    "Zoë Ünïcode",
    "𝄞 music",
    "\u202eevil",
    "\ufeffbom",
    "\ufffd",
    "9" * 400,
    "-1",
    "1e400",
    "NaN",
    "-Infinity",
    "0",
    "0.0",
    "4.5",
    "5.0001",
    "142",
    "604801",
    "null",
    "true",
    "[]",
    "{}",
    "'; DROP TABLE calls; --",
    "%00",
    "%ff",
    "<script>alert(1)</script>",
    "=&=&",
    "\\",
    '"',
    "Thu, 04 Apr 2024 18:32:15 +0000",
    "Thur, 20 Sept 2018 10:00:00 +0100",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00Z",
    "1712255535",
    "99999999999999",
    "completed",
    "COMPLETED ",
    "in-progress",
    "zz-top",
]
SURROGATES = ["\ud800", "\udfff", "a\udc80b", "\ud83d"]  # lone halves: valid JSON escapes only
SIGNED_JSON_TAILS = [  # appended to a signed JSON callback object
    b', "CallSid": "dup"}',
    b', "Jitter": NaN}',
    b', "Peak": -Infinity}',
    b', "Big": 1e400}',
    b', "Small": -1e400}',
    b', "Tiny": 1e-400}',
    b', "Long": ' + b"7" * 4000 + b"}",
    b', "Deep": ' + b"[" * 60 + b"]" * 60 + b"}",
    b', "Deeper": ' + b"[" * 600 + b"]" * 600 + b"}",
    b', "Objects": ' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}",
    b', "\\u0000": "\\u0000", "\\ud800": "\\udbff"}',
]
CONTENT_TYPES = [
    "text/plain",
    "text/csv",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/octet-stream",
    f"{FORM}; charset=latin-1",
    f"{FORM}; charset=utf-16",
    "APPLICATION/JSON",
    "application/json; charset=utf-16",
    "application/vnd.callpulse+json",
    f"{FORM}, application/json",
    "",
    ";",
    "application/json; charset=\u00e9",
    "x" * 3000,
]
ODD_METHODS = ["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "HEAD"]
ODD_PATHS = [
    CALLBACK_PATH + "/",
    CALLBACK_PATH + "//",
    "/callbacks/CALL-STATUS",
    CALLBACK_PATH + ";jsessionid=1",
    CALLBACK_PATH + "%2F",
    "/callbacks/call-status%00",
    "/callbacks/%ff",
    "//callbacks/call-status",
    "/callbacks",
    "/",
    "/api/v1/calls",
    "/metrics/../callbacks/call-status",
    "/" + "a" * 2000,
]
ODD_QUERIES = [
    "?",
    "?&&",
    "?a=1&&b=2",
    "?bodySHA256=",
    "?bodySHA256=zz",
    "?bodySHA256=" + "0" * 64,
    "?bodySHA256=1&bodySHA256=2",
    "?%ff=%fe",
    "?%00",
    "?x=" + "q" * 4000,
    "?CallSid=x&CallSid=y",
    "?tenant=%E2%82%AC",
]


def sw_sign(url: str, params: dict[str, str]) -> str:
    return str(SignalWireValidator(SIGNING_KEY).build_signature_with_compatibility(url, params))


def twilio_sign(url: str, params: dict[str, str]) -> str:
    return str(TwilioValidator(SIGNING_KEY).compute_signature(url, params))


@dataclass
class Request:
    kind: str
    method: str
    target: str  # path and query, appended to the server's base URL
    headers: list[tuple[str, str | bytes]]
    body: bytes = b""
    key: Key | None = None  # what a 200 stores, when the request names a usable call
    signed: bool = False  # carries an SDK signature over what it sends (or a part of it)


@dataclass
class Outcome:
    request: Request
    path: str  # as sent, after the client normalized it
    status: int
    reason: str | None  # the refusal's quarantine reason, from the answer
    result: str | None  # the 200's result


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Fuzzer:
    """Builds requests from one seeded Random; a failure names the kind and the seed."""

    def __init__(self, rng: random.Random, base_url: str) -> None:
        self.rng = rng
        self.base_url = base_url
        self.sent: list[Request] = []  # signed callbacks, for re-sending (sender retries)
        self.makers: list[tuple[int, Callable[[], Request]]] = [
            (24, self.signed_form),
            (16, self.signed_json_hashed),
            (8, self.signed_json_params),
            (6, self.signed_get),
            (6, self.resend),
            (8, self.mutated_signed),
            (8, self.random_body),
            (6, self.unsigned_callback),
            (5, self.odd_content_type),
            (4, self.odd_method),
            (4, self.odd_path),
            (5, self.odd_query),
            (5, self.odd_headers),
            (3, self.too_large),
        ]
        self.weights = [w for w, _ in self.makers]

    def next(self) -> Request:
        (make,) = self.rng.choices([m for _, m in self.makers], self.weights)
        return make()

    # -- values ------------------------------------------------------------------------------

    def sid(self) -> str:
        roll = self.rng.random()
        if roll < 0.85:
            return str(uuid.UUID(int=self.rng.getrandbits(128)))
        if roll < 0.93:
            return f"CA{self.rng.getrandbits(128):032x}"
        return self.rng.choice(["", " ", "-x", "a" * 65, "ä", "a b", "a/b", "\x00", "1e400"])

    def text(self, surrogates: bool = False) -> str:
        roll = self.rng.random()
        if surrogates and roll < 0.15:
            return self.rng.choice(SURROGATES)
        if roll < 0.75:
            return self.rng.choice(HOSTILE_TEXT)
        alphabet = "aZ09+-_ .,:;/\\%&=?#\x00\x01\x1f\x7f\u00e9\u2028\u0301\U0001f600\ufffe"
        size = self.rng.choice([1, 3, 10, 60, 500])
        return "".join(self.rng.choice(alphabet) for _ in range(size))

    def json_value(self, depth: int = 0) -> Any:
        roll = self.rng.random()
        if roll < 0.35:
            return self.text(surrogates=True)
        if roll < 0.45:
            return self.rng.choice([0, -1, 142, 2**63, -(2**64), 10**50, 10**300, 10**4000])
        if roll < 0.55:
            return self.rng.choice([0.0, -0.0, 4.5, 1e-320, 1.7976931348623157e308, 1e300])
        if roll < 0.62:
            return self.rng.choice([True, False, None])
        if depth < 3 and roll < 0.8:
            return [self.json_value(depth + 1) for _ in range(self.rng.randrange(4))]
        if depth < 3:
            return {
                self.text(True): self.json_value(depth + 1) for _ in range(self.rng.randrange(4))
            }
        return "leaf"

    def fields(self, for_json: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {"CallSid": self.sid(), "AccountSid": self.account()}
        for name in EXAMPLE_PAYLOAD:
            if name in fields:
                continue
            roll = self.rng.random()
            if roll < 0.4:
                fields[name] = EXAMPLE_PAYLOAD[name]
            elif roll < 0.5:
                continue  # absent
            elif for_json and roll < 0.7:
                fields[name] = self.json_value()
            else:
                fields[name] = self.text(surrogates=for_json)
        for _ in range(self.rng.choice([0, 0, 1, 2, 5])):
            name = self.text(surrogates=for_json) or "Extra"
            fields[name] = self.json_value() if for_json else self.text()
        return fields

    def account(self) -> str:
        return ACCOUNT_SID if self.rng.random() < 0.7 else self.sid()

    @staticmethod
    def key_of(fields: dict[str, Any]) -> Key:
        return (str(fields["AccountSid"]), str(fields["CallSid"]))

    def url(self, target: str) -> str:
        return self.base_url + target

    # -- signed callbacks --------------------------------------------------------------------

    def signed_form(self) -> Request:
        fields = {k: str(v) for k, v in self.fields().items()}
        body = urlencode(fields).encode()
        target = CALLBACK_PATH + self.rng.choice(["", "", "", "?tenant=north&x=%2B1"])
        signer, header = self.rng.choice(
            [(sw_sign, "X-SignalWire-Signature"), (twilio_sign, "X-Twilio-Signature")]
        )
        signature = signer(self.url(target), fields)
        content_type = self.rng.choice([FORM, FORM, f"{FORM}; charset=UTF-8", FORM.upper()])
        request = Request(
            "signed form",
            "POST",
            target,
            [("Content-Type", content_type), (header, signature)],
            body,
            self.key_of(fields),
            True,
        )
        self.sent.append(request)
        return request

    def signed_json_hashed(self) -> Request:
        fields = self.fields(for_json=True)
        body = json.dumps(fields, ensure_ascii=self.rng.random() < 0.5).encode(
            "utf-8", "surrogatepass"
        )
        if self.rng.random() < 0.2:  # written by hand: what json.dumps would not write
            body = body[:-1] + self.rng.choice(SIGNED_JSON_TAILS)
        target = f"{CALLBACK_PATH}?bodySHA256={hashlib.sha256(body).hexdigest()}"
        request = Request(
            "signed JSON (bodySHA256)",
            "POST",
            target,
            [
                (
                    "Content-Type",
                    self.rng.choice(["application/json", "application/json; charset=utf-8"]),
                ),
                ("X-SignalWire-Signature", sw_sign(self.url(target), {})),
            ],
            body,
            self.key_of(fields),
            True,
        )
        self.sent.append(request)
        return request

    def signed_json_params(self) -> Request:
        """JSON without bodySHA256: signed over its fields like a form (string values only)."""
        fields = {k: self.text(surrogates=True) if k not in ("CallSid", "AccountSid") else v
                  for k, v in self.fields().items()}  # fmt: skip
        body = json.dumps(fields).encode()
        try:
            signature = twilio_sign(self.url(CALLBACK_PATH), fields)
        except UnicodeEncodeError:  # a lone surrogate: no SDK can sign it
            signature = "bm9uZQ=="
        request = Request(
            "signed JSON (params)",
            "POST",
            CALLBACK_PATH,
            [("Content-Type", "application/json"), ("X-Twilio-Signature", signature)],
            body,
            self.key_of(fields),
            signature != "bm9uZQ==",
        )
        self.sent.append(request)
        return request

    def signed_get(self) -> Request:
        fields = {k: str(v) for k, v in self.fields().items()}
        target = f"{CALLBACK_PATH}?{urlencode(fields)}"
        if len(target) > 6000:
            target = f"{CALLBACK_PATH}?{urlencode({k: v[:100] for k, v in fields.items()})}"
        return Request(
            "signed GET",
            "GET",
            target,
            [("X-SignalWire-Signature", sw_sign(self.url(target), {}))],
            b"",
            self.key_of(fields),
            True,
        )

    def resend(self) -> Request:
        """A sender's retry: the same request again, byte for byte."""
        if not self.sent:
            return self.signed_form()
        earlier = self.rng.choice(self.sent)
        return Request("retry", earlier.method, earlier.target, earlier.headers, earlier.body,
                       earlier.key, earlier.signed)  # fmt: skip

    def mutated_signed(self) -> Request:
        """A signed callback damaged in transit (or rewritten in ways a form allows)."""
        fields = {k: str(v) for k, v in self.fields().items()}
        body = urlencode(fields).encode()
        signature = sw_sign(self.url(CALLBACK_PATH), fields)
        mutation = self.rng.choice(
            ["truncate", "flip", "double amp", "raw plus", "invalid utf-8", "dup key", "nul"]
        )
        if mutation == "truncate":
            body = body[: self.rng.randrange(len(body))]
        elif mutation == "flip":
            at = self.rng.randrange(len(body))
            body = body[:at] + bytes([body[at] ^ (1 << self.rng.randrange(8))]) + body[at + 1 :]
        elif mutation == "double amp":  # a=1&&b=2: empty parts are skipped, the fields stay
            body = body.replace(b"&", b"&&")
        elif mutation == "raw plus":
            body = body.replace(b"%2B", b"+")
        elif mutation == "invalid utf-8":
            body += b"&Bad=\xff\xfe\xc3"
        elif mutation == "dup key":
            body += b"&" + self.rng.choice([b"CallSid", b"From", b"Extra"]) + b"=again"
        else:
            body += b"&Nul=%00\x00"
        return Request(f"mutated signed ({mutation})", "POST", CALLBACK_PATH,
                       [("Content-Type", FORM), ("X-SignalWire-Signature", signature)], body,
                       self.key_of(fields), True)  # fmt: skip

    # -- unsigned and odd --------------------------------------------------------------------

    def random_body(self) -> Request:
        size = self.rng.choice([0, 1, 7, 100, 2000, 60000])
        kind = self.rng.choice(["bytes", "json junk", "form junk"])
        if kind == "bytes":
            body = self.rng.randbytes(size)
        elif kind == "json junk":
            body = self.rng.choice(
                [
                    b"[" * 5000,
                    b'{"CallSid": ' + b"9" * 5000 + b"}",
                    b'{"a": 1e999999}',
                    b'{"\\ud800": "\\udfff"}',
                    b"{" + b'"a":{' * 900 + b"}" * 901,
                    b'{"CallSid": "x", "CallSid": "y"}',
                    b"\xef\xbb\xbf{}",
                    b"null",
                    b'"just a string"',
                    b'{"a": NaN, "b": -Infinity}',
                    b'{"a": "\x00\x01"}',
                    self.rng.randbytes(size),
                ]
            )
        else:
            body = b"&".join(self.rng.randbytes(self.rng.randrange(1, 20)) for _ in range(20))
        content_type = "application/json" if kind == "json junk" else FORM
        headers: list[tuple[str, str | bytes]] = [("Content-Type", content_type)]
        if self.rng.random() < 0.5:
            headers.append(("X-SignalWire-Signature", self.rng.choice(["", "x", "=" * 28, "é"])))
        return Request(f"random body ({kind})", "POST", CALLBACK_PATH, headers, body)

    def unsigned_callback(self) -> Request:
        fields = {k: str(v) for k, v in self.fields().items()}
        headers: list[tuple[str, str | bytes]] = [("Content-Type", FORM)]
        choice = self.rng.random()
        if choice < 0.3:
            headers.append(("X-SignalWire-Signature", twilio_sign(self.url("/elsewhere"), fields)))
        elif choice < 0.6:
            wrong = TwilioValidator("PSKsomeone-else").compute_signature
            headers.append(("X-Twilio-Signature", wrong(self.url(CALLBACK_PATH), fields)))
        return Request("unsigned callback", "POST", CALLBACK_PATH, headers,
                       urlencode(fields).encode())  # fmt: skip

    def odd_content_type(self) -> Request:
        fields = {k: str(v) for k, v in self.fields().items()}
        content_type = self.rng.choice(CONTENT_TYPES)
        body = urlencode(fields).encode()
        if "utf-16" in content_type:
            body = json.dumps(fields).encode("utf-16")
        headers: list[tuple[str, str | bytes]] = [
            ("X-SignalWire-Signature", sw_sign(self.url(CALLBACK_PATH), fields))
        ]
        if content_type:
            headers.append(("Content-Type", content_type))
        # Signed over its fields, whatever the label: a form with a charset parameter, or JSON in
        # UTF-16 (which JSON decoding detects), may be stored.
        key = self.key_of(fields)
        return Request(f"content type {content_type[:40]!r}", "POST", CALLBACK_PATH, headers,
                       body, key, True)  # fmt: skip

    def odd_method(self) -> Request:
        method = self.rng.choice(ODD_METHODS)
        return Request(f"method {method}", method, CALLBACK_PATH, [("Content-Type", FORM)],
                       b"" if method in ("HEAD", "TRACE") else b"CallSid=x")  # fmt: skip

    def odd_path(self) -> Request:
        fields = {k: str(v) for k, v in self.fields().items()}
        path = self.rng.choice(ODD_PATHS)
        headers: list[tuple[str, str | bytes]] = [
            ("Content-Type", FORM),
            ("X-SignalWire-Signature", sw_sign(self.url(path), fields)),
        ]
        return Request(f"path {path[:40]}", "POST", path, headers, urlencode(fields).encode())

    def odd_query(self) -> Request:
        fields = {k: str(v) for k, v in self.fields().items()}
        target = CALLBACK_PATH + self.rng.choice(ODD_QUERIES)
        content_type = self.rng.choice([FORM, "application/json"])
        body = urlencode(fields).encode() if content_type == FORM else json.dumps(fields).encode()
        signed = self.rng.random() < 0.5
        headers: list[tuple[str, str | bytes]] = [("Content-Type", content_type)]
        if signed:  # signed as the sender saw the URL; a JSON body's hash in it is wrong
            params = fields if "bodySHA256" not in target else {}
            headers.append(("X-SignalWire-Signature", sw_sign(self.url(target), params)))
        return Request(f"query {target[len(CALLBACK_PATH):][:30]}", "POST", target, headers,
                       body, self.key_of(fields), signed)  # fmt: skip

    def odd_headers(self) -> Request:
        fields = {k: str(v) for k, v in self.fields().items()}
        body = urlencode(fields).encode()
        good = sw_sign(self.url(CALLBACK_PATH), fields)
        variant = self.rng.choice(
            ["dup good first", "dup bad first", "both aliases", "huge", "non-ascii", "many"]
        )
        headers: list[tuple[str, str | bytes]] = [("Content-Type", FORM)]
        if variant == "dup good first":
            headers += [("X-SignalWire-Signature", good), ("X-SignalWire-Signature", "bad")]
        elif variant == "dup bad first":
            headers += [("X-SignalWire-Signature", "bad"), ("X-SignalWire-Signature", good)]
        elif variant == "both aliases":
            headers += [("X-Twilio-Signature", "bad"), ("X-SignalWire-Signature", good)]
        elif variant == "huge":  # well below the HTTP parser's header limits
            headers += [("X-SignalWire-Signature", good), ("X-Padding", "p" * 6000)]
        elif variant == "non-ascii":
            headers += [
                ("X-SignalWire-Signature", good),
                ("X-Caller", "Zoë".encode("latin-1")),
                ("X-Raw", b"\xff\xfe\x80"),
                ("Cookie", "session=secret"),
                ("Authorization", "Bearer secret"),
            ]
        else:
            headers += [("X-SignalWire-Signature", good)]
            headers += [(f"X-H{n}", "v" * 50) for n in range(60)]
        return Request(f"headers ({variant})", "POST", CALLBACK_PATH, headers, body,
                       self.key_of(fields), True)  # fmt: skip

    def too_large(self) -> Request:
        fields = {k: str(v) for k, v in self.fields().items()}
        fields["Padding"] = "p" * self.rng.choice([65536, 70000, 200000])
        body = urlencode(fields).encode()
        return Request("too large", "POST", CALLBACK_PATH,
                       [("Content-Type", FORM),
                        ("X-SignalWire-Signature", sw_sign(self.url(CALLBACK_PATH), fields))],
                       body, self.key_of(fields), True)  # fmt: skip


# -- running it -----------------------------------------------------------------------------------


def on_callback_path(outcome: Outcome) -> bool:
    """Reached the callback endpoint: GET or POST at exactly the callback path."""
    return outcome.request.method in ("GET", "POST") and outcome.path == CALLBACK_PATH


def send(client: httpx.Client, base_url: str, request: Request, tally: Tally) -> None:
    headers = [(k, v.encode("latin-1") if isinstance(v, str) else v) for k, v in request.headers]
    try:
        response = client.request(
            request.method, base_url + request.target, headers=headers,
            content=request.body or None,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        with tally.lock:
            tally.errors.append(f"{request.kind}: {exc!r}")
        return
    reason = result = None
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            reason, result = data.get("reason"), data.get("result")
    with tally.lock:
        path = response.request.url.path
        tally.outcomes.append(Outcome(request, path, response.status_code, reason, result))
        if response.status_code >= 500:
            tally.errors.append(
                f"{request.kind}: {response.status_code} {response.text[:200]} "
                f"{request.method} {request.target[:80]} {request.body[:120]!r}"
            )


def run_fuzz(server: ServerProcess, seed: int) -> Tally:
    fuzzer = Fuzzer(random.Random(seed), server.base_url)
    tally = Tally()
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    with httpx.Client(timeout=30, limits=limits) as client:
        for _ in range(SEQUENTIAL):
            send(client, server.base_url, fuzzer.next(), tally)
        burst = [fuzzer.next() for _ in range(CONCURRENT)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda r: send(client, server.base_url, r, tally), burst))
    return tally


def wait_for_quarantine(server: ServerProcess, expected: int) -> tuple[int, int]:
    """(kept, dropped) once they add up to ``expected``; entries may land after the answer."""
    deadline = time.monotonic() + QUARANTINE_DEADLINE_S
    while True:
        with server.store() as store:
            kept, dropped = store.quarantine_counts()
        if kept + dropped >= expected or time.monotonic() > deadline:
            return kept, dropped
        time.sleep(0.2)


def no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ServerProcess]]:
    workdir = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with backend_database(request.param, workdir) as url:
        proc = ServerProcess(workdir, database_url=url).start()
        try:
            yield str(request.param), proc
        finally:
            proc.stop()


def test_fuzz_never_fails_loses_or_doubles(
    fuzz_server: tuple[str, ServerProcess], tmp_path: Path
) -> None:
    backend, server = fuzz_server
    seed = SEED + BACKENDS.index(backend)
    started = time.monotonic()
    tally = run_fuzz(server, seed)
    elapsed = time.monotonic() - started
    where = f"(backend {backend}, FUZZ_SEED={SEED})"

    assert not tally.errors, f"{where}\n" + "\n".join(tally.errors[:20])
    outcomes = tally.outcomes
    assert len(outcomes) == SEQUENTIAL + CONCURRENT

    # The callback endpoint answers only what it documents; a 200 only for what was signed.
    callback = [o for o in outcomes if on_callback_path(o)]
    odd = Counter(
        (o.request.method, o.status) for o in callback if o.status not in CALLBACK_STATUSES
    )
    assert not odd, f"{where} unexpected answers on the callback path: {odd}"
    acked: Counter[Key] = Counter()
    for o in callback:
        if o.status == 200:
            assert o.request.signed, f"{where} unsigned request accepted: {o.request}"
            assert o.request.key is not None, f"{where} {o.request.kind}"
            assert o.result in ("inserted", "updated", "duplicate"), (where, o.result)
            acked[o.request.key] += 1
        else:
            assert o.reason, f"{where} refusal without a reason: {o.status} {o.request.kind}"
    # Other methods on the callback path are refused by the router, before the endpoint.
    for o in outcomes:
        if o.path == CALLBACK_PATH and not on_callback_path(o):
            assert o.status == (200 if o.request.method == "HEAD" else 405), o.request.kind

    # Every refusal at the endpoint is in the quarantine, the reasons as answered.
    refused = [o for o in callback if o.status != 200]
    kept, dropped = wait_for_quarantine(server, len(refused))
    assert kept + dropped == len(refused), f"{where} {kept}+{dropped} quarantined, {len(refused)}"
    with server.store() as store:
        entries = store.list_quarantine(limit=len(refused) + 10)
    assert len(entries) == kept
    if not dropped:
        assert Counter(e.reason for e in entries) == Counter(o.reason for o in refused)
    for entry in entries:
        assert entry.headers.get("cookie", "<redacted>") == "<redacted>"
        assert entry.headers.get("authorization", "<redacted>") == "<redacted>"
    held = sorted(
        len(e.body) + len(e.url.encode("utf-8", "surrogatepass"))
        + len(json.dumps(e.headers)) + len(json.dumps(e.errors))
        for e in entries
    )  # fmt: skip
    bytes_per_refusal = sum(held) / max(1, len(held))
    median_bytes = held[len(held) // 2] if held else 0

    # Every acknowledged callback is stored exactly once; nothing else is stored.
    with server.store() as store:
        stored = Counter((c.record.account_sid, c.record.call_sid) for c in store.iter_calls())
        assert store.count_calls() == sum(stored.values())
        for account_sid, call_sid in list(acked)[:50]:
            assert store.get_call(account_sid, call_sid) is not None
    doubled = [k for k, n in stored.items() if n > 1]
    assert not doubled, f"{where} stored more than once: {doubled[:5]}"
    assert set(stored) == set(acked), (
        f"{where} lost: {sorted(set(acked) - set(stored))[:5]}, "
        f"never acknowledged: {sorted(set(stored) - set(acked))[:5]}"
    )

    # Every export format works on what was stored.
    lines = [ln for ln in server.cli("export", "--format", "jsonl").stdout.split("\n") if ln]
    rows = [json.loads(line, parse_constant=no_constants) for line in lines]
    assert Counter((r["account_sid"], r["call_sid"]) for r in rows) == stored
    table = list(csv.DictReader(io.StringIO(server.cli("export", "--format", "csv").stdout)))
    assert len(table) == len(rows)
    parquet = tmp_path / f"fuzz-{backend}.parquet"
    server.cli("export", "--format", "parquet", "--output", str(parquet))
    assert pq.read_table(parquet).num_rows == len(rows)

    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, f"{where}\n{log[-4000:]}"

    statuses = Counter(o.status for o in outcomes)
    print(
        f"\nfuzz {backend} seed={seed}: {len(outcomes)} requests in {elapsed:.1f}s; "
        f"statuses {dict(sorted(statuses.items()))}; callback path: {len(callback)} "
        f"({len(refused)} refused, reasons {dict(Counter(o.reason for o in refused))}); "
        f"acknowledged {sum(acked.values())} answers for {len(acked)} calls, stored "
        f"{sum(stored.values())}; quarantine {kept} kept, {dropped} dropped, "
        f"{bytes_per_refusal:.0f} bytes per refused request (median {median_bytes}, "
        f"largest {held[-1] if held else 0})"
    )
