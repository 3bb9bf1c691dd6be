"""OpenAI-shaped error bodies: `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import msgspec

from keyrail_common.messages import ErrorInfo

_encode = msgspec.json.Encoder().encode

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for(status: int) -> str:
    return _TYPE_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")


def make_error(
    status: int, message: str, code: str | None = None, param: str | None = None, error_class: str = ""
) -> ErrorInfo:
    return ErrorInfo(
        http_status=status,
        message=message,
        type=error_type_for(status),
        code=code,
        param=param,
        error_class=error_class or code or "",
    )


def error_body(error: ErrorInfo) -> bytes:
    return _encode(
        {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}
    )
