"""An upstream HTTP status (300 and above: the upstream client follows no redirect) → failure
class, per the provider reference §1.4.

Every adapter starts from this and refines it with its provider's error codes (for example an
OpenAI 429 `insufficient_quota` is a quota failure, not a rate limit).
"""

from __future__ import annotations

from keyrail_common.failures import FailureClass

_BY_STATUS = {
    400: FailureClass.CALLER_ERROR,
    401: FailureClass.CREDENTIAL,
    402: FailureClass.QUOTA,  # billing / quota exhausted: the caller's request was fine
    403: FailureClass.CREDENTIAL,  # the stored key lacks the permission
    404: FailureClass.MODEL_ACCESS,  # model or deployment not found: a configuration error
    408: FailureClass.TIMEOUT,
    409: FailureClass.TIMEOUT,  # lock timeout, retried by the official SDKs
    413: FailureClass.CALLER_ERROR,
    422: FailureClass.CALLER_ERROR,
    429: FailureClass.RATE_LIMIT,
    498: FailureClass.OVERLOADED,  # Groq: flex capacity unavailable
    503: FailureClass.OVERLOADED,
    504: FailureClass.TIMEOUT,
    529: FailureClass.OVERLOADED,  # Anthropic overloaded_error
}


def class_for_status(status: int) -> FailureClass:
    known = _BY_STATUS.get(status)
    if known is not None:
        return known
    if 300 <= status < 400:  # no redirect is followed: the target's base URL is wrong
        return FailureClass.MODEL_ACCESS
    return FailureClass.UPSTREAM_5XX if status >= 500 else FailureClass.CALLER_ERROR
