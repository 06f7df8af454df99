"""The Compatibility API's error answer: ``{"code", "message", "more_info", "status"}``."""

from __future__ import annotations

from starlette.responses import JSONResponse

AUTH_FAILED = 20003
METHOD_NOT_ALLOWED = 20004
NOT_FOUND = 20404
INVALID_PARAMETER = 21000  # a bad parameter without a more specific code; the message names it
INVALID_METHOD = 21209
INVALID_URL = 21402
INVALID_PHONE_NUMBER = 21421
NUMBER_UNAVAILABLE = 21452
INVALID_PAGE_SIZE = 54454


class ApiError(Exception):
    """An error the emulator answers with, as the real API would."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.signalwire.com/docs/errors/{self.code}",
            "status": self.status,
        }
        headers = {"WWW-Authenticate": 'Basic realm="SignalWire"'} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


def not_found(what: str) -> ApiError:
    return ApiError(404, NOT_FOUND, f"The requested resource {what} was not found")


def invalid(name: str, why: str) -> ApiError:
    return ApiError(400, INVALID_PARAMETER, f"{name} {why}")
