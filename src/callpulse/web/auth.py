"""Who may read the API and the dashboard.

A request is let in with ``Authorization: Bearer <CALLPULSE_API_TOKEN>`` or with the session
cookie the login form sets. The cookie holds an issue time, a random nonce and an HMAC over both
keyed by a key derived from the token — never the token itself — so changing the token ends
every session, and log-out records the nonce as revoked in the store (shared by all processes).
Without a configured token everything is refused, except for a server run with
``--allow-unsigned`` that is reached on loopback only (local experiments).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import Response

SESSION_COOKIE = "callpulse_session"
SESSION_MAX_AGE_S = 7 * 24 * 3600
# issue time, nonce, MAC: ASCII digits and hex only; anything else is simply not a session
# (str.isdigit() accepts digits such as "\u00b2" that int() refuses).
_SESSION_FORMAT = re.compile(r"([0-9]{1,12})\.([0-9a-f]{32})\.([0-9a-f]{64})")
_MAX_SESSION_CHARS = 128
CLOSED_MESSAGE = (
    "no API token is configured: set CALLPULSE_API_TOKEN to a long random secret and restart"
)


class AccessDenied(Exception):
    """Why a request is refused; ``status`` is 401 (no or wrong credentials) or 403 (closed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:  # a unix socket path or a name
        return False


class Revocations(Protocol):
    """Where logged-out sessions are kept (the Store): shared by every process and host."""

    def revoke_session(self, nonce: str, expires_at: datetime) -> None: ...

    def session_revoked(self, nonce: str) -> bool: ...


@dataclass(frozen=True)
class Access:
    api_token: str
    allow_unsigned: bool = False
    public_url: str = ""  # CALLPULSE_PUBLIC_URL: the origin browsers see behind a proxy
    revocations: Revocations | None = None  # None: log-out only clears the cookie

    @property
    def configured(self) -> bool:
        return bool(self.api_token)

    def _secure(self, conn: HTTPConnection) -> bool:
        return self.public_url.startswith("https://") or conn.url.scheme == "https"

    def same_origin(self, conn: HTTPConnection) -> bool:
        """A form post from a page of this server (browsers send Origin with every POST), so
        another site cannot log a visitor in or out."""
        origin = conn.headers.get("origin")
        if origin is None:
            return True
        allowed = {conn.headers.get("host"), urlsplit(self.public_url).netloc or None}
        return urlsplit(origin).netloc in allowed - {None}

    def is_open(self, conn: HTTPConnection) -> bool:
        """No token, ``--allow-unsigned``, both ends of the connection on loopback, and a
        loopback Host (a page on another site that re-resolves its name to 127.0.0.1 must not
        read calls through the visitor's browser)."""
        server = conn.scope.get("server")  # the listening socket's address
        host = urlsplit(f"//{conn.headers.get('host', '')}").hostname or ""
        return (
            not self.configured
            and self.allow_unsigned
            and server is not None
            and _is_loopback(server[0])
            and conn.client is not None
            and _is_loopback(conn.client.host)
            and (host == "localhost" or _is_loopback(host))
        )

    def token_matches(self, candidate: str) -> bool:
        return self.configured and hmac.compare_digest(
            candidate.encode("utf-8", "surrogateescape"), self.api_token.encode()
        )

    def _session_mac(self, payload: str) -> str:
        # A key of its own, so a session MAC can never double as anything signed with the token.
        key = hmac.new(self.api_token.encode(), b"callpulse session key", hashlib.sha256).digest()
        return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        payload = f"{int(time.time())}.{secrets.token_hex(16)}"
        return f"{payload}.{self._session_mac(payload)}"

    def _session(self, value: str) -> tuple[int, str] | None:
        """(issue time, nonce) of a well-formed, authentic and unexpired session, else None."""
        if not self.configured:
            return None
        parts = _SESSION_FORMAT.fullmatch(value) if len(value) <= _MAX_SESSION_CHARS else None
        if parts is None:
            return None
        issued, nonce, mac = parts.groups()
        if time.time() - int(issued) > SESSION_MAX_AGE_S:
            return None
        if not hmac.compare_digest(mac.encode(), self._session_mac(f"{issued}.{nonce}").encode()):
            return None
        return int(issued), nonce

    def session_valid(self, value: str) -> bool:
        """Blocking (asks the store whether it was revoked): call it off the event loop."""
        session = self._session(value)
        return session is not None and not (
            self.revocations is not None and self.revocations.session_revoked(session[1])
        )

    def revoke(self, value: str) -> None:
        """End a session for every process sharing the store (blocking, like session_valid)."""
        session = self._session(value)
        if session is not None and self.revocations is not None:
            issued, nonce = session
            expires = datetime.fromtimestamp(issued + SESSION_MAX_AGE_S, UTC)
            self.revocations.revoke_session(nonce, expires)

    def check(self, conn: HTTPConnection, bearer: str | None = None) -> None:
        """Raise AccessDenied unless the request may read data. Blocking for a session cookie
        (see session_valid)."""
        if self.is_open(conn):
            return
        if not self.configured:
            raise AccessDenied(403, CLOSED_MESSAGE)
        if bearer is not None:
            if self.token_matches(bearer):
                return
            raise AccessDenied(401, "wrong API token in the Authorization header")
        session = conn.cookies.get(SESSION_COOKIE)
        if session is not None and self.session_valid(session):
            return
        raise AccessDenied(
            401,
            "authentication required: send 'Authorization: Bearer <CALLPULSE_API_TOKEN>' "
            "or log in at /",
        )

    def set_session_cookie(self, response: Response, conn: HTTPConnection) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            self.new_session(),
            max_age=SESSION_MAX_AGE_S,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self._secure(conn),
        )

    def clear_session_cookie(self, response: Response, conn: HTTPConnection) -> None:
        response.delete_cookie(
            SESSION_COOKIE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self._secure(conn),
        )
