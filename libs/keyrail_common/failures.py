"""The failure vocabulary: every way a request or an attempt can fail, and what follows from it.

One table decides, for each failure class, the HTTP status the client gets, whether the same
target may be retried, whether the router may fall back to the next target, and whether the
failure counts towards a target's circuit breaker. The worker, the router and the ingress build
every error through `failure()` and decide through the functions below; nothing else maps
statuses or branches on class names.
"""

from __future__ import annotations

import enum
from collections.abc import Collection

import msgspec


class FailureClass(enum.StrEnum):
    # The caller's request: the next target would fail the same way.
    CALLER_ERROR = "caller_error"  # the upstream rejected the request (400, 413, 422)
    CONTEXT_LENGTH = "context_length"
    CONTENT_FILTER = "content_filter"
    # The target: its configuration or its provider account.
    CREDENTIAL = "credential"  # the stored credential was rejected (401, 403)
    MODEL_ACCESS = "model_access"  # model or deployment not found or not allowed (404)
    QUOTA = "quota"  # billing or quota exhausted (402, 429 insufficient_quota)
    UNSUPPORTED = "unsupported"  # this provider or adapter cannot do this operation (in this version)
    # The target: capacity and transport.
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"  # 503, 529, Groq's 498
    UPSTREAM_5XX = "upstream_5xx"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    STREAM_CUT = "stream_cut"  # the stream broke or ended without its terminal event
    NO_WORKER = "no_worker"  # no worker of the target's pool is running
    WORKER_ERROR = "worker_error"  # the worker failed on its own (a bug: logged there)
    # The client.
    CLIENT_DISCONNECTED = "client_disconnected"
    # Decided by the gateway before any attempt.
    BAD_REQUEST = "bad_request"
    REQUEST_TOO_LARGE = "request_too_large"
    UNAUTHENTICATED = "unauthenticated"  # unknown or missing gateway API key
    SCOPE = "scope"  # out of the key's project scope, or the model is not enabled
    NOT_FOUND = "not_found"  # unknown model or integration
    GATEWAY_TIMEOUT = "gateway_timeout"  # the request's deadline passed inside the gateway
    CIRCUIT_OPEN = "circuit_open"  # the target's circuit breaker is open: not attempted


class ErrorInfo(msgspec.Struct, omit_defaults=True, gc=False):  # no cycles: see keyrail_common.messages
    """A failure as it travels on the bus: the OpenAI-shaped error the client will see, the class
    that decided its status, and what the upstream said (its status, code and retry delay)."""

    http_status: int
    message: str
    type: str
    error_class: FailureClass
    code: str | None = None
    param: str | None = None
    upstream_status: int = 0  # 0: the gateway failed, not the upstream
    provider_code: str = ""  # the upstream's own error code or type
    retry_after_ms: int = 0  # the upstream's Retry-After / retry-after-ms / rate-limit reset


class Policy(msgspec.Struct, frozen=True):
    status: int  # what the client gets (see `client_status` for classes that keep the upstream's)
    retry: bool  # the same target may be tried again (when its retry policy allows)
    fallback: bool  # the next target may be tried by default (no `fallback_on` list)
    breaker: bool  # counts towards the target's circuit breaker
    never_fall_back: bool = False  # not even when a `fallback_on` list names it


_CALLER = Policy(400, retry=False, fallback=False, breaker=False, never_fall_back=True)
_GATEWAY_INTERNAL = Policy(503, retry=False, fallback=True, breaker=False)

POLICIES: dict[FailureClass, Policy] = {
    FailureClass.CALLER_ERROR: _CALLER,
    FailureClass.CONTEXT_LENGTH: _CALLER,
    FailureClass.CONTENT_FILTER: _CALLER,
    FailureClass.CREDENTIAL: Policy(502, retry=False, fallback=True, breaker=True),
    FailureClass.MODEL_ACCESS: Policy(502, retry=False, fallback=True, breaker=True),
    FailureClass.QUOTA: Policy(429, retry=False, fallback=True, breaker=True),
    FailureClass.UNSUPPORTED: Policy(400, retry=False, fallback=True, breaker=False),
    FailureClass.RATE_LIMIT: Policy(429, retry=True, fallback=True, breaker=True),
    FailureClass.OVERLOADED: Policy(503, retry=True, fallback=True, breaker=True),
    FailureClass.UPSTREAM_5XX: Policy(502, retry=True, fallback=True, breaker=True),
    FailureClass.TIMEOUT: Policy(504, retry=True, fallback=True, breaker=True),
    FailureClass.CONNECTION: Policy(502, retry=True, fallback=True, breaker=True),
    FailureClass.STREAM_CUT: Policy(502, retry=False, fallback=True, breaker=True),
    FailureClass.NO_WORKER: _GATEWAY_INTERNAL,
    FailureClass.WORKER_ERROR: Policy(502, retry=False, fallback=True, breaker=False),
    FailureClass.CLIENT_DISCONNECTED: Policy(
        499, retry=False, fallback=False, breaker=False, never_fall_back=True
    ),
    FailureClass.BAD_REQUEST: _CALLER,
    FailureClass.REQUEST_TOO_LARGE: Policy(413, False, False, False, never_fall_back=True),
    FailureClass.UNAUTHENTICATED: Policy(401, False, False, False, never_fall_back=True),
    FailureClass.SCOPE: Policy(403, False, False, False, never_fall_back=True),
    FailureClass.NOT_FOUND: Policy(404, False, False, False, never_fall_back=True),
    FailureClass.GATEWAY_TIMEOUT: Policy(504, False, False, False, never_fall_back=True),
    FailureClass.CIRCUIT_OPEN: _GATEWAY_INTERNAL,
}

# Failures of the gateway itself, not answers of the upstream: a `fallback_on` list (which names
# upstream statuses and classes) does not stop the router from trying the next target after them.
_ALWAYS_FALL_BACK = frozenset(
    {FailureClass.NO_WORKER, FailureClass.UNSUPPORTED, FailureClass.WORKER_ERROR, FailureClass.CIRCUIT_OPEN}
)
_KEEPS_UPSTREAM_STATUS = {FailureClass.CALLER_ERROR: frozenset({400, 413, 422})}

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
    """OpenAI's `error.type` for a status."""
    return _TYPE_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")


def client_status(failure_class: FailureClass, upstream_status: int = 0) -> int:
    kept = _KEEPS_UPSTREAM_STATUS.get(failure_class)
    if kept is not None and upstream_status in kept:
        return upstream_status
    if failure_class is FailureClass.UPSTREAM_5XX and upstream_status == 503:
        return 503
    return POLICIES[failure_class].status


def failure(
    failure_class: FailureClass,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    upstream_status: int = 0,
    provider_code: str = "",
    retry_after_s: float = 0.0,
) -> ErrorInfo:
    """The one constructor of the errors clients see: the status follows from the class."""
    status = client_status(failure_class, upstream_status)
    return ErrorInfo(
        http_status=status,
        message=message,
        type=error_type_for(status),
        code=code or failure_class.value,
        param=param,
        error_class=failure_class,
        upstream_status=upstream_status,
        provider_code=provider_code,
        retry_after_ms=round(retry_after_s * 1000) if retry_after_s > 0 else 0,
    )


FallbackOn = Collection[int | str]


def may_fall_back(error: ErrorInfo, fallback_on: FallbackOn | None = None) -> bool:
    """May the router try the next target after this failure?

    Without a list, the class's default decides. A config's `fallback_on` list (SPEC §4a) names
    upstream statuses (`429`, `503`) and class names (`"timeout"`); a caller error never falls back.
    """
    policy = POLICIES[error.error_class]
    if policy.never_fall_back:
        return False
    if fallback_on is None or error.error_class in _ALWAYS_FALL_BACK:
        return policy.fallback
    status = error.upstream_status or error.http_status
    return status in fallback_on or error.error_class.value in fallback_on


def may_retry(error: ErrorInfo) -> bool:
    return POLICIES[error.error_class].retry


def counts_for_breaker(failure_class: FailureClass) -> bool:
    """Does a failure of this class count towards its target's circuit breaker? (The breaker
    reads classes off attempt rows, so this takes the class, not the whole error.)"""
    return POLICIES[failure_class].breaker


def retry_delay_s(error: ErrorInfo, retry_index: int, backoff_s: float, jitter: float) -> float:
    """Exponential backoff with jitter, never shorter than the upstream's own retry delay.

    `retry_index` counts from 0; `jitter` is a number in [0, 1) from the caller's random source,
    so this stays a pure function. The executor skips the retry when the delay does not fit in
    what is left of the request's deadline.
    """
    backoff = backoff_s * (2**retry_index) * (0.5 + jitter / 2)
    return max(backoff, error.retry_after_ms / 1000)
