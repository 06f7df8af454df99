"""The web dashboard at ``/``: the log-in form, the page, and its static assets.

The page is a fixed HTML shell; ``static/dashboard.js`` fills it from the JSON API with DOM
calls (``textContent``), never by parsing strings as HTML, and the Content-Security-Policy
allows scripts from this origin only — so nothing a caller sends can run in the browser.
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from callpulse.config import Settings
from callpulse.store.errors import StoreUnavailable
from callpulse.web.auth import CLOSED_MESSAGE, SESSION_COOKIE, Access, AccessDenied
from callpulse.web.body import read_limited
from callpulse.web.throttle import FailureThrottle

HERE = Path(__file__).parent
MAX_FORM_BYTES = 4096
UNAVAILABLE_MESSAGE = "the database is unavailable; try again in a moment"
LOGIN_FAILURES_PER_MINUTE = 5  # per client address, then 429 until the minute is over

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _template(name: str) -> Template:
    return Template((HERE / "templates" / name).read_text(encoding="utf-8"))


_LOGIN = _template("login.html")
_DASHBOARD = _template("dashboard.html")


def _banner(text: str) -> str:
    return f'<div class="banner warn" role="alert">{html.escape(text)}</div>'


def _page(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def _login_page(message: str = "", status: int = 200, form: bool = True) -> HTMLResponse:
    return _page(
        _LOGIN.substitute(
            message=f'<p class="error" role="alert">{html.escape(message)}</p>' if message else "",
            form_hidden="" if form else "hidden",
        ),
        status,
    )


def dashboard_routes(access: Access, settings: Settings) -> list[BaseRoute]:
    signatures_checked = bool(settings.signing_keys)
    # What the page needs of the settings: its default zone and where a line turns red.
    page_settings = {
        "timezone": settings.timezone,
        "target_success": str(settings.target_success_rate),
        "max_poor": str(settings.max_poor_rate),
    }
    throttle = FailureThrottle(LOGIN_FAILURES_PER_MINUTE, window_s=60.0)

    async def page(request: Request) -> Response:
        try:
            await run_in_threadpool(access.check, request)
        except StoreUnavailable:
            return _login_page(UNAVAILABLE_MESSAGE, 503, form=False)
        except AccessDenied as denied:
            if denied.status == 403:
                return _login_page(denied.message, 403, form=False)
            return _login_page()
        banners = []
        if not signatures_checked:
            banners.append(
                "Signatures are not checked: anyone who can reach the callback endpoint can add "
                "calls. Set CALLPULSE_SIGNING_KEYS."
            )
        if not access.configured:
            banners.append(
                "No API token: this dashboard is open to every local user. Set CALLPULSE_API_TOKEN."
            )
        return _page(
            _DASHBOARD.substitute(
                banners="".join(_banner(text) for text in banners),
                logout_hidden="" if access.configured else "hidden",
                **{key: html.escape(value) for key, value in page_settings.items()},
            )
        )

    async def login(request: Request) -> Response:
        if not access.same_origin(request):
            return _login_page("log in from this server's own page", 403)
        if not access.configured:
            return _login_page(CLOSED_MESSAGE, 403, form=False)
        client = request.client.host if request.client is not None else ""
        if (wait_s := throttle.retry_after(client)) is not None:
            page = _login_page(
                f"too many wrong tokens from your address: try again in {wait_s} s", 429
            )
            page.headers["Retry-After"] = str(wait_s)
            return page
        body, size = await read_limited(request, MAX_FORM_BYTES)
        token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        if size > MAX_FORM_BYTES or not access.token_matches(token):
            throttle.failed(client)
            return _login_page("wrong token: use the value of CALLPULSE_API_TOKEN", 401)
        response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
        access.set_session_cookie(response, request)
        return response

    async def logout(request: Request) -> Response:
        if not access.same_origin(request):
            return _login_page("log out from this server's own page", 403)
        if (session := request.cookies.get(SESSION_COOKIE)) is not None:
            try:
                await run_in_threadpool(access.revoke, session)
            except StoreUnavailable:  # the session would live on: say so rather than pretend
                return _login_page(f"not logged out: {UNAVAILABLE_MESSAGE}", 503, form=False)
        response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
        access.clear_session_cookie(response, request)
        return response

    return [
        Route("/", page),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
