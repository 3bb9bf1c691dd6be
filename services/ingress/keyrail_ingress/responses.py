"""Response helpers: JSON via msgspec and OpenAI-shaped errors."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from keyrail_common.errors import error_body, openai_error_body
from keyrail_common.failures import ErrorInfo, error_type_for

_encode = msgspec.json.Encoder().encode


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(payload), status_code=status, media_type="application/json", headers=headers)


def error_response(error: ErrorInfo, headers: dict[str, str] | None = None) -> Response:
    return Response(
        error_body(error), status_code=error.http_status, media_type="application/json", headers=headers
    )


def error(status: int, message: str, code: str | None = None, param: str | None = None) -> Response:
    """An HTTP-level or admin-API error (the data plane's failures go through `error_response`)."""
    return Response(
        openai_error_body(message, error_type_for(status), param, code),
        status_code=status,
        media_type="application/json",
    )


def bad_body(exc: msgspec.ValidationError | msgspec.DecodeError) -> Response:
    """400 naming the field msgspec complained about (its messages end with `at $.field`)."""
    text = str(exc)
    param = None
    if "`" in text:
        param = text.split("`")[1]
    if "`$." in text:  # "… - at `$.field`", or "… - at `key` in `$.field`" for a dict's key
        param = text.rsplit("`$.", 1)[1].rstrip("`")
        if text.startswith("Object contains unknown field `"):  # the unknown field of a nested object
            param = f"{param}.{text.split('`')[1]}"
    if isinstance(exc, msgspec.ValidationError):
        return error(400, f"Invalid request body: {text}", code="invalid_request_body", param=param)
    return error(400, "Request body is not valid JSON.", code="invalid_json")
