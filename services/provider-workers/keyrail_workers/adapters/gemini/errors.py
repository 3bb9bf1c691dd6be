"""Google `google.rpc.Status` errors `{"error": {"code", "message", "status", "details"}}` → the
failure vocabulary (§5.4). Vertex AI answers in the same shape (§6.4).

The canonical `status` decides where Google sends one, else the HTTP status (adapters/status.py).
Two refinements need the `details`: a 400 whose `ErrorInfo.reason` is `API_KEY_INVALID` is the
stored key's fault, not the caller's; a 429 whose `QuotaFailure` names a per-day quota is
exhausted quota (retrying before tomorrow is pointless), any other 429 a rate limit. The delay
comes from `RetryInfo.retryDelay` (a protobuf Duration such as "38s"), else the retry headers.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import UpstreamError
from keyrail_workers.adapters.status import class_for_status
from keyrail_workers.retry_after import retry_after_s

F = FailureClass
_BY_STATUS = {
    "INVALID_ARGUMENT": F.CALLER_ERROR,
    "OUT_OF_RANGE": F.CALLER_ERROR,
    "FAILED_PRECONDITION": F.MODEL_ACCESS,  # e.g. region not supported, billing not enabled: fall back
    "UNAUTHENTICATED": F.CREDENTIAL,
    "PERMISSION_DENIED": F.CREDENTIAL,
    "NOT_FOUND": F.MODEL_ACCESS,
    "RESOURCE_EXHAUSTED": F.RATE_LIMIT,
    "UNAVAILABLE": F.OVERLOADED,
    "DEADLINE_EXCEEDED": F.TIMEOUT,
    "INTERNAL": F.UPSTREAM_5XX,
    "UNKNOWN": F.UPSTREAM_5XX,
}
_CREDENTIAL_REASONS = frozenset({"API_KEY_INVALID"})
_WAITS = frozenset({F.RATE_LIMIT, F.QUOTA, F.OVERLOADED})
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


class _Violation(msgspec.Struct, rename="camel"):
    quota_id: str = ""


class _Detail(msgspec.Struct, rename="camel"):
    type: str = msgspec.field(default="", name="@type")
    reason: str = ""  # ErrorInfo
    retry_delay: str = ""  # RetryInfo
    violations: list[_Violation] = []  # QuotaFailure


class GoogleStatus(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""
    details: list[_Detail] = []


class _Envelope(msgspec.Struct):
    error: GoogleStatus | None = None


# Streaming endpoints may wrap the error in a one-element array.
_envelope_decoder = msgspec.json.Decoder(_Envelope | list[_Envelope])


def _decode(body: bytes) -> GoogleStatus | None:
    try:
        envelope = _envelope_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if isinstance(envelope, list):
        return envelope[0].error if envelope else None
    return envelope.error


def _duration_s(text: str) -> float:
    """A protobuf Duration in JSON ("38s", "1.5s"); 0 when it is not one."""
    try:
        value = float(text.removesuffix("s")) if text.endswith("s") else 0.0
    except ValueError:
        return 0.0
    return value if 0 < value < float("inf") else 0.0


def _reason(status: GoogleStatus) -> str:
    return next((d.reason for d in status.details if d.type == _ERROR_INFO and d.reason), "")


def _class(http_status: int, status: GoogleStatus) -> FailureClass:
    failure_class = _BY_STATUS.get(status.status) or class_for_status(http_status or status.code)
    if _reason(status) in _CREDENTIAL_REASONS:
        return F.CREDENTIAL
    if failure_class is F.RATE_LIMIT and any(
        "PerDay" in v.quota_id for d in status.details if d.type == _QUOTA_FAILURE for v in d.violations
    ):
        return F.QUOTA
    return failure_class


def _retry_delay_s(failure_class: FailureClass, status: GoogleStatus, headers: Mapping[str, str]) -> float:
    if failure_class not in _WAITS:
        return 0.0
    for detail in status.details:
        if detail.type == _RETRY_INFO and (delay := _duration_s(detail.retry_delay)):
            return delay
    return retry_after_s(headers, rate_limit_resets=failure_class is not F.OVERLOADED)


def classify(http_status: int, headers: Mapping[str, str], status: GoogleStatus) -> UpstreamError:
    failure_class = _class(http_status, status)
    return UpstreamError(
        failure_class=failure_class,
        message=status.message,
        upstream_status=http_status,
        provider_code=_reason(status) or status.status,
        retry_after_s=_retry_delay_s(failure_class, status, headers),
    )


def classify_error(http_status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    # Not Google's shape (a proxy's HTML page, say): the HTTP status decides, the body is the message.
    status = _decode(body) or GoogleStatus()
    status.message = status.message or body.decode(errors="replace").strip()
    return classify(http_status, headers, status)


def in_band_error(status: GoogleStatus) -> UpstreamError:
    """`data: {"error": {...}}` inside a 200 stream: classified by its own code and status."""
    classified = classify(0, {}, status)
    if not status.status and not status.code:
        classified.failure_class = F.STREAM_CUT
    classified.message = classified.message or "the Gemini stream reported an error"
    return classified
