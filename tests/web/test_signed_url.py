"""The receiver spells the URL it verifies exactly as Starlette's ``URL`` of the same request,
for every request a server hands over: a server address, and a Host header or none."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.types import Scope

from callpulse.web.receiver import _headers, signed_url

_PATHS = st.text(st.sampled_from("/abc?#\\%é "), min_size=1).map(lambda p: "/" + p)
_QUERIES = st.text(st.sampled_from("a=1&b%20é+"), max_size=12).map(str.encode)
_HOSTS = st.sampled_from([None, "example.com", "example.com:8080", "[::1]:5000", "127.0.0.1"])
_SERVERS = st.sampled_from([("10.0.0.1", 80), ("10.0.0.1", 8000), ("::1", 443)])


def _scope(path: str, query: bytes, host: str | None, server: object, scheme: str) -> Scope:
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    if host is not None:
        headers.append((b"host", host.encode()))
    return {
        "type": "http",
        "method": "POST",
        "scheme": scheme,
        "path": path,
        "query_string": query,
        "headers": headers,
        "server": server,
    }


@given(_PATHS, _QUERIES, _HOSTS, _SERVERS, st.sampled_from(["http", "https"]))
def test_as_starlette_spells_it(
    path: str, query: bytes, host: str | None, server: object, scheme: str
) -> None:
    scope = _scope(path, query, host, server, scheme)
    assert signed_url(scope, _headers(scope), "") == str(Request(scope).url)


@given(_PATHS, _QUERIES)
def test_the_public_url_replaces_scheme_and_host(path: str, query: bytes) -> None:
    scope = _scope(path, query, "internal:8000", ("10.0.0.1", 8000), "http")
    expected = Request(scope).url
    tail = expected.path + (f"?{expected.query}" if expected.query else "")
    public = "https://hooks.example.com"
    assert signed_url(scope, _headers(scope), public) == public + tail


def test_of_a_repeated_header_the_first_value_counts() -> None:
    scope = _scope("/x", b"", "first.example", None, "http")
    scope["headers"].append((b"host", b"second.example"))
    assert _headers(scope)["host"] == "first.example" == Request(scope).headers["host"]
