"""Errors in OpenAI's wire shape (`{"error": {message, type, param, code}}`), so SDKs raise the
exception they would raise against OpenAI (BadRequestError, AuthenticationError, RateLimitError).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
    504: "server_error",
}


class APIError(Exception):
    """An error response; `extra` fields go inside the `error` object (e.g. moderation_details)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error = {
            "message": self.message,
            "type": _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error"),
            "param": self.param,
            "code": self.code,
            **self.extra,
        }
        return {"error": error}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_request") -> APIError:
    return APIError(400, message, param=param, code=code)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def validation_message(exc: RequestValidationError) -> tuple[str, str | None, str]:
    """A one-line message naming the field, and the error code, for a request FastAPI could not parse."""
    errors = exc.errors()
    if not errors:
        return "invalid request", None, "invalid_request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        detail = ctx.get("error", "not valid JSON")
        return f"malformed JSON body: {detail}", None, "invalid_json"
    loc = tuple(first.get("loc", ()))
    field = _loc(loc) or None
    if field is None and first.get("type") in ("model_attributes_type", "dict_type", "model_type"):
        return "request body must be a JSON object (send Content-Type: application/json)", None, "invalid_json"
    if first.get("type") == "missing" and field:
        message = f"missing required field {field!r}"
    elif first.get("type") == "extra_forbidden" and field:
        message = f"unrecognized request argument {field!r}"
    elif field:
        message = f"{field}: {first.get('msg', 'invalid value')}"
    else:
        message = str(first.get("msg", "invalid request"))
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return message, field, "invalid_request"


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIError)
    return exc.response()


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, param, code = validation_message(exc)
    return APIError(400, message, param=param, code=code).response()


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code)
    return APIError(exc.status_code, str(exc.detail), code=code, headers=dict(exc.headers or {})).response()
