"""OpenAI-shaped error bodies: `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import msgspec

from keyrail_common.failures import ErrorInfo

_encode = msgspec.json.Encoder().encode


def openai_error_body(message: str, type_: str, param: str | None, code: str | None) -> bytes:
    return _encode({"error": {"message": message, "type": type_, "param": param, "code": code}})


def error_body(error: ErrorInfo) -> bytes:
    return openai_error_body(error.message, error.type, error.param, error.code)
