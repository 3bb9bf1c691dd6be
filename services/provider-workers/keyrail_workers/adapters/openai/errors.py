"""OpenAI error bodies `{"error": {"message", "type", "code", "param"}}` → the failure vocabulary.

The status decides first (adapters/status.py); OpenAI's codes refine it: `insufficient_quota`
is a quota failure inside a 429, `context_length_exceeded` a context-length failure inside a
400, and Azure-style `content_filter` a content-filter failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import UpstreamError
from keyrail_workers.adapters.status import class_for_status
from keyrail_workers.retry_after import retry_after_for

_BY_CODE = {
    "insufficient_quota": FailureClass.QUOTA,
    "context_length_exceeded": FailureClass.CONTEXT_LENGTH,
    "string_above_max_length": FailureClass.CONTEXT_LENGTH,
    "content_filter": FailureClass.CONTENT_FILTER,
    "content_policy_violation": FailureClass.CONTENT_FILTER,
    "invalid_api_key": FailureClass.CREDENTIAL,
    "model_not_found": FailureClass.MODEL_ACCESS,
    "DeploymentNotFound": FailureClass.MODEL_ACCESS,
}


class _WireError(msgspec.Struct):
    message: str = ""
    type: str | None = None
    code: str | int | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _WireError | str | None = None


def _parts(body: bytes) -> tuple[str, str]:
    """(message, code-or-type): the upstream's own words, untruncated (scrubbing needs whole secrets)."""
    try:
        error = msgspec.json.decode(body, type=_ErrorEnvelope).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return body.decode(errors="replace").strip(), ""
    if isinstance(error, _WireError):
        return error.message, str(error.code or error.type or "")
    return error or "", ""


def _refine(failure_class: FailureClass, code: str) -> FailureClass:
    refined = _BY_CODE.get(code)
    if refined is None:
        return failure_class
    # A code never turns a caller's error into a retryable one or the reverse, except quota in a 429.
    if failure_class is FailureClass.RATE_LIMIT and refined is FailureClass.QUOTA:
        return refined
    if failure_class is FailureClass.CALLER_ERROR and refined in (
        FailureClass.CONTEXT_LENGTH,
        FailureClass.CONTENT_FILTER,
    ):
        return refined
    if failure_class in (FailureClass.CALLER_ERROR, FailureClass.CREDENTIAL, FailureClass.MODEL_ACCESS) and (
        refined in (FailureClass.CREDENTIAL, FailureClass.MODEL_ACCESS)
    ):
        return refined
    return failure_class


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    message, code = _parts(body)
    failure_class = _refine(class_for_status(status), code)
    return UpstreamError(
        failure_class=failure_class,
        message=message,
        upstream_status=status,
        provider_code=code,
        retry_after_s=retry_after_for(failure_class, headers),
    )


def in_band_error(error: dict[str, Any]) -> UpstreamError:
    """`data: {"error": {...}}` inside a 200 stream."""
    code = str(error.get("code") or error.get("type") or "")
    return UpstreamError(
        failure_class=_BY_CODE.get(code, FailureClass.STREAM_CUT),
        message=str(error.get("message", "stream error")),
        provider_code=code,
    )
