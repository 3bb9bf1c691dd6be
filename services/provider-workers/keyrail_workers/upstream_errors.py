"""Upstream failures → the error the client sees (status per the provider reference §1.4).

Upstream messages are kept (they say what went wrong) but scrubbed of credential material:
some providers echo part of a rejected key back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

from keyrail_common.errors import make_error
from keyrail_common.messages import ErrorInfo

# Key-looking tokens (sk-…, masked forms like sk-abc***xyz) are removed even when they are not ours.
_KEYLIKE = re.compile(r"\b(sk|pk|rk|kr|key|gsk|xai)[-_][A-Za-z0-9*_\-.]{4,}", re.IGNORECASE)


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


class _WireError(msgspec.Struct):
    message: str = ""
    type: str | None = None
    code: str | int | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _WireError | str | None = None


def _upstream_message(body: bytes) -> str:
    """The upstream's own message (untruncated: scrubbing must see whole secrets first)."""
    try:
        error = msgspec.json.decode(body, type=_ErrorEnvelope).error
    except msgspec.DecodeError:
        return body.decode(errors="replace").strip()
    if isinstance(error, _WireError):
        return error.message
    return error or ""


def classify_status(upstream_status: int) -> tuple[int, str]:
    """(status for the client, error class) for an upstream HTTP status."""
    if upstream_status in (400, 413, 422):
        return upstream_status, "upstream_bad_request"
    if upstream_status in (401, 403):
        return 502, "upstream_auth"
    if upstream_status == 404:
        return 502, "upstream_not_found"
    if upstream_status == 429:
        return 429, "rate_limit"
    if upstream_status == 402:  # billing / quota exhausted: the caller's request was fine
        return 429, "quota"
    if upstream_status in (408, 409, 504):  # 409: lock timeout, retried by the official SDKs
        return 504, "timeout"
    return (503 if upstream_status in (503, 529) else 502), "upstream_5xx"


def upstream_http_error(slug: str, upstream_status: int, body: bytes, secrets: Iterable[str]) -> ErrorInfo:
    status, error_class = classify_status(upstream_status)
    message = scrub(_upstream_message(body), secrets)[:300]
    return make_error(
        status,
        f"Upstream '{slug}' answered HTTP {upstream_status}: {message or 'no message'}",
        code=f"upstream_{upstream_status}",
        error_class=error_class,
    )


def upstream_connection_error(slug: str, detail: str) -> ErrorInfo:
    return make_error(
        502,
        f"Could not reach upstream '{slug}': {detail}",
        code="upstream_unreachable",
        error_class="connection",
    )


def upstream_timeout(slug: str, timeout_s: float) -> ErrorInfo:
    return make_error(
        504,
        f"Upstream '{slug}' did not answer within {timeout_s:.0f}s.",
        code="upstream_timeout",
        error_class="timeout",
    )


def midstream_error(slug: str, error: dict[str, object], secrets: Iterable[str]) -> ErrorInfo:
    message = scrub(str(error.get("message", "stream error")), secrets)
    return make_error(
        502,
        f"Upstream '{slug}' failed mid-stream: {message}",
        code="upstream_stream_error",
        error_class="stream",
    )
