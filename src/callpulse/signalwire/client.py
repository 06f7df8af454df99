"""A small typed client for SignalWire's Compatibility REST API: phone numbers and calls."""

from __future__ import annotations

import email.utils
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from callpulse.errors import CallpulseError

API_PREFIX = "/api/laml/2010-04-01"
PAGE_SIZE = 1000  # the API's maximum: fewest round trips
RETRY_DELAYS_S = (0.5, 1.0, 2.0)  # for 429 / 20429 and 5xx answers
MAX_RETRY_AFTER_S = 10.0
ENV_SPACE_URL = "SIGNALWIRE_SPACE_URL"
ENV_PROJECT_ID = "SIGNALWIRE_PROJECT_ID"
ENV_API_TOKEN = "SIGNALWIRE_API_TOKEN"  # noqa: S105 (a variable name, not a secret)
CREDENTIALS_HINT = f"check {ENV_PROJECT_ID} and {ENV_API_TOKEN}"
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")
T = TypeVar("T")


class SignalWireError(CallpulseError):
    """The API could not be reached, refused the request, or answered something unexpected."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _time(value: Any) -> datetime | None:
    """An RFC 2822 time of the API (``None`` stays ``None``) in UTC."""
    if value is None or value == "":
        return None
    parsed = email.utils.parsedate_to_datetime(str(value))
    if parsed.tzinfo is None:  # "-0000": UTC, origin zone unknown
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def rfc2822(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    sid: str
    phone_number: str
    friendly_name: str
    status_callback: str  # "" when none is set
    status_callback_method: str
    account_sid: str
    voice_url: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhoneNumber:
        return cls(
            sid=str(data["sid"]),
            phone_number=str(data["phone_number"]),
            friendly_name=str(data.get("friendly_name") or ""),
            status_callback=str(data.get("status_callback") or ""),
            status_callback_method=str(data.get("status_callback_method") or "POST").upper(),
            account_sid=str(data.get("account_sid") or ""),
            voice_url=str(data.get("voice_url") or ""),
        )


@dataclass(frozen=True, slots=True)
class ApiCall:
    sid: str
    account_sid: str
    from_: str
    to: str
    status: str
    direction: str
    start_time: datetime | None
    end_time: datetime | None
    date_created: datetime | None
    duration_s: int | None
    mos: float | None  # audio_in_mos; null when the call had no measured audio
    phone_number_sid: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApiCall:
        duration, mos = data.get("duration"), data.get("audio_in_mos")
        return cls(
            sid=str(data["sid"]),
            account_sid=str(data.get("account_sid") or ""),
            from_=str(data.get("from") or ""),
            to=str(data.get("to") or ""),
            status=str(data.get("status") or ""),
            direction=str(data.get("direction") or ""),
            start_time=_time(data.get("start_time")),
            end_time=_time(data.get("end_time")),
            date_created=_time(data.get("date_created")),
            # Twilio sends the duration as a string, SignalWire as a number.
            duration_s=None if duration in (None, "") else int(str(duration)),
            mos=None if mos in (None, "") else float(mos),
            phone_number_sid=str(data.get("phone_number_sid") or ""),
        )


def base_url(space_url: str) -> str:
    """``example.signalwire.com`` → ``https://example.signalwire.com``; a full URL keeps its
    scheme and port (an emulator on ``http://127.0.0.1:8081``)."""
    text = space_url.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SignalWireError(
            f"{ENV_SPACE_URL}: expected a space host such as example.signalwire.com "
            f"or a URL such as http://127.0.0.1:8081, got {space_url!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


class CompatibilityClient:
    """Numbers and calls of one project; every failure is a one-line ``SignalWireError``."""

    def __init__(
        self, space_url: str, project_id: str, api_token: str, *, timeout: float = 10.0
    ) -> None:
        self.base_url = base_url(space_url)
        self.host = urlsplit(self.base_url).netloc
        self.project_id = project_id
        self.timeout = timeout
        self._account_path = f"{API_PREFIX}/Accounts/{quote(project_id, safe='')}"
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=httpx.BasicAuth(project_id, api_token),
            timeout=timeout,
            headers={"Accept": "application/json"},
        )

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> CompatibilityClient:
        env = os.environ if env is None else env
        names = (ENV_SPACE_URL, ENV_PROJECT_ID, ENV_API_TOKEN)
        missing = [name for name in names if not env.get(name, "").strip()]
        if missing:
            raise SignalWireError(
                f"not set: {', '.join(missing)} (the space such as example.signalwire.com, "
                "the project id and an API token, from the SignalWire dashboard's API page)"
            )
        return cls(env[ENV_SPACE_URL], env[ENV_PROJECT_ID].strip(), env[ENV_API_TOKEN].strip())

    def __enter__(self) -> CompatibilityClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- phone numbers ----------------------------------------------------------------------------

    def iter_numbers(self) -> Iterator[PhoneNumber]:
        """Every number of the project, following the API's pages."""
        path = f"{self._account_path}/IncomingPhoneNumbers.json"
        for item in self._pages(path, "incoming_phone_numbers", {}):
            yield self._parse(PhoneNumber.from_json, item, "phone number")

    def find_number(self, number_or_sid: str) -> PhoneNumber:
        """The number ``+15551234567`` or the number with that sid."""
        wanted = number_or_sid.strip()
        if wanted.startswith("+"):
            path = f"{self._account_path}/IncomingPhoneNumbers.json"
            # The filter saves paging through every number where the server supports it; the
            # comparison below keeps the answer right where it does not.
            for item in self._pages(path, "incoming_phone_numbers", {"PhoneNumber": wanted}):
                number = self._parse(PhoneNumber.from_json, item, "phone number")
                if number.phone_number == wanted:
                    return number
        elif wanted:
            try:
                return self._parse(PhoneNumber.from_json, self._get_number(wanted), "phone number")
            except SignalWireError as exc:
                if exc.status != 404:
                    raise
        raise SignalWireError(
            f"no phone number {number_or_sid!r} in project {self.project_id} "
            "(see: callpulse numbers list)"
        )

    def update_number(self, sid: str, *, status_callback: str, method: str) -> PhoneNumber:
        data = {"StatusCallback": status_callback, "StatusCallbackMethod": method}
        answer = self._request("POST", self._number_path(sid), data=data)
        return self._parse(PhoneNumber.from_json, answer, "phone number")

    def _get_number(self, sid: str) -> dict[str, Any]:
        return self._request("GET", self._number_path(sid))

    def _number_path(self, sid: str) -> str:
        return f"{self._account_path}/IncomingPhoneNumbers/{quote(sid, safe='')}.json"

    # -- calls ------------------------------------------------------------------------------------

    def iter_calls(
        self, *, since: datetime, until: datetime, to: str | None = None, status: str | None = None
    ) -> Iterator[ApiCall]:
        """Calls that started from ``since`` to ``until`` (both included), following pages.

        The range is checked here too: servers differ in how they read ``StartTime>``
        (Twilio compares dates only), and whether its bounds are inclusive is undocumented."""
        params = {"StartTime>": rfc2822(since), "StartTime<": rfc2822(until)}
        if to is not None:
            params["To"] = to
        if status is not None:
            params["Status"] = status
        path = f"{self._account_path}/Calls.json"
        for item in self._pages(path, "calls", params):
            call = self._parse(ApiCall.from_json, item, "call")
            if call.start_time is not None and since <= call.start_time <= until:
                yield call

    # -- transport --------------------------------------------------------------------------------

    def _pages(self, path: str, key: str, params: Mapping[str, str]) -> Iterator[Any]:
        url: str | None = path
        query: Mapping[str, str | int] | None = {**params, "PageSize": PAGE_SIZE}
        while url:
            page = self._request("GET", url, params=query)
            items = page.get(key)
            if not isinstance(items, list):
                raise SignalWireError(f"{self.host} answered GET {path} without a {key!r} list")
            yield from items
            # next_page_uri is a path on the same host and carries every parameter itself; the
            # credentials go to this host only, whatever a page says.
            url, query = page.get("next_page_uri") or None, None
            if url is not None and (not isinstance(url, str) or not url.startswith("/")):
                raise SignalWireError(
                    f"{self.host} answered GET {path} with a next page elsewhere ({url!r})"
                )

    def _parse(self, build: Callable[[Mapping[str, Any]], T], data: Any, what: str) -> T:
        try:
            return build(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise SignalWireError(
                f"{self.host} sent a {what} callpulse cannot read: {exc!r}"
            ) from None

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        for delay in (*RETRY_DELAYS_S, None):
            response = self._send(method, url, params, data)
            if delay is None or not _retryable(response):
                break
            time.sleep(_retry_after(response, delay))
        return self._answer(method, url, response)

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        data: Mapping[str, str] | None,
    ) -> httpx.Response:
        try:
            return self._http.request(method, url, params=params, data=data)
        except httpx.TimeoutException:
            raise SignalWireError(
                f"SignalWire at {self.host} did not answer within {self.timeout:g} s "
                f"(check {ENV_SPACE_URL} and the network)"
            ) from None
        except httpx.TransportError as exc:
            reason = _ERRNO.sub("", str(exc)) or type(exc).__name__
            raise SignalWireError(
                f"cannot reach SignalWire at {self.host}: {reason} (check {ENV_SPACE_URL})"
            ) from None

    def _answer(self, method: str, url: str, response: httpx.Response) -> dict[str, Any]:
        path = urlsplit(url).path
        body = _json(response)
        if response.is_success:
            if response.status_code == 204:
                return {}
            if not isinstance(body, dict):
                raise SignalWireError(
                    f"{self.host} answered {method} {path} with HTTP {response.status_code} but "
                    f"no JSON object (is {ENV_SPACE_URL} a SignalWire space?)"
                )
            return body
        error = body if isinstance(body, dict) else {}
        code = error.get("code") if isinstance(error.get("code"), int) else None
        message = str(error.get("message") or response.text[:200] or response.reason_phrase)
        if response.status_code == 401 or code == 20003:
            raise SignalWireError(
                f"SignalWire at {self.host} refused the credentials of project "
                f"{self.project_id}: {CREDENTIALS_HINT}",
                status=response.status_code,
                code=code,
            )
        raise SignalWireError(
            f"SignalWire API error {code if code is not None else '-'} "
            f"(HTTP {response.status_code}) on {method} {path}: {message}",
            status=response.status_code,
            code=code,
        )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retryable(response: httpx.Response) -> bool:
    if response.is_success:
        return False
    if response.status_code == 429 or response.status_code >= 500:
        return True
    body = _json(response)
    return isinstance(body, dict) and body.get("code") == 20429


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", "")), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return default
