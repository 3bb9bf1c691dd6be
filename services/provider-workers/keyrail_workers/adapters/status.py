"""An upstream HTTP status (300 and above: the upstream client follows no redirect) → failure
class, per the provider reference §1.4.

Every adapter starts from this and refines it with its provider's error codes (for example an
OpenAI 429 `insufficient_quota` is a quota failure, not a rate limit).
"""

from __future__ import annotations

from collections.abc import Mapping

from keyrail_common.failures import FailureClass
from keyrail_workers.retry_after import retry_after_s

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


def upstream_retry_after_s(failure_class: FailureClass, headers: Mapping[str, str]) -> float:
    """The wait an upstream asked for, where it means something: a rate limit's (its reset headers
    too) or an overload's (explicit retry headers only); none for any other failure."""
    if failure_class is FailureClass.RATE_LIMIT:
        return retry_after_s(headers)
    if failure_class is FailureClass.OVERLOADED:
        return retry_after_s(headers, rate_limit_resets=False)
    return 0.0
