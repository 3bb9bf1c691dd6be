"""Anthropic error bodies `{"type": "error", "error": {"type", "message"}, "request_id"}` → the
failure vocabulary (reference §4.4).

Anthropic's `error.type` names the failure exactly, so it decides; the status decides only when
the body is not Anthropic's (a proxy's error page, an empty body). A prompt longer than the
model's window is an `invalid_request_error` whose message says so: that is a context-length
failure, the one an operator can route around with a larger model.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import UpstreamError
from keyrail_workers.adapters.status import class_for_status
from keyrail_workers.retry_after import retry_after_for

_BY_TYPE = {
    "invalid_request_error": FailureClass.CALLER_ERROR,
    "request_too_large": FailureClass.CALLER_ERROR,  # 413: the body is too big for any Anthropic target
    "authentication_error": FailureClass.CREDENTIAL,
    "permission_error": FailureClass.CREDENTIAL,
    "not_found_error": FailureClass.MODEL_ACCESS,
    "billing_error": FailureClass.QUOTA,
    "rate_limit_error": FailureClass.RATE_LIMIT,
    "api_error": FailureClass.UPSTREAM_5XX,
    "timeout_error": FailureClass.TIMEOUT,
    "overloaded_error": FailureClass.OVERLOADED,
}
# How Anthropic words an over-long prompt: "prompt is too long: 215000 tokens > 200000 maximum",
# "input length and `max_tokens` exceed context limit: ...".
_CONTEXT_LENGTH_WORDS = ("prompt is too long", "exceed context limit", "context window")


class WireError(msgspec.Struct):
    type: str = ""
    message: str = ""


class _ErrorEnvelope(msgspec.Struct):
    error: WireError | None = None


_envelope_decoder = msgspec.json.Decoder(_ErrorEnvelope)


def _class_of(error_type: str, message: str, default: FailureClass) -> FailureClass:
    failure_class = _BY_TYPE.get(error_type, default)
    if failure_class is FailureClass.CALLER_ERROR:
        lowered = message.lower()
        if any(words in lowered for words in _CONTEXT_LENGTH_WORDS):
            return FailureClass.CONTEXT_LENGTH
    return failure_class


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    try:
        error = _envelope_decoder.decode(body).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        error = None
    # The upstream's own words, untruncated (scrubbing needs whole secrets); never our request headers.
    error_type, message = (
        (error.type, error.message) if error else ("", body.decode(errors="replace").strip())
    )
    failure_class = _class_of(error_type, message, class_for_status(status))
    return UpstreamError(
        failure_class=failure_class,
        message=message,
        upstream_status=status,
        provider_code=error_type,
        retry_after_s=retry_after_for(failure_class, headers),
    )


def in_band_error(error: WireError | None) -> UpstreamError:
    """`event: error` inside a 200 stream: `{"type": "error", "error": {"type", "message"}}`."""
    error_type = error.type if error else ""
    message = (error.message if error else "") or "stream error"
    return UpstreamError(
        failure_class=_class_of(error_type, message, FailureClass.STREAM_CUT),
        message=message,
        provider_code=error_type,
    )
