"""Upstream failures → the errors the router and the client see, each with the provider slug.

Upstream messages are kept (they say what went wrong) but scrubbed of credential material:
some providers echo part of a rejected key back. The failure class (from the adapter's
classification) decides the status, through keyrail_common.failures.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_workers.adapters.base import UpstreamError

# Key-looking tokens (sk-…, masked forms like sk-abc***xyz) are removed even when they are not ours.
_KEYLIKE = re.compile(r"\b(sk|pk|rk|kr|key|gsk|xai)[-_][A-Za-z0-9*_\-.]{4,}", re.IGNORECASE)
_MESSAGE_LIMIT = 300


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def upstream_failure(slug: str, error: UpstreamError, secrets: Iterable[str]) -> ErrorInfo:
    """An upstream's error response (or in-band stream error), as the client will read it."""
    message = scrub(error.message, secrets)[:_MESSAGE_LIMIT] or "no message"
    said = f"HTTP {error.upstream_status}: {message}" if error.upstream_status else message
    if error.failure_class is FailureClass.CREDENTIAL:
        text = (
            f"Upstream '{slug}' rejected the stored credential ({said}). Create a new key at the provider, "
            f"then rotate it: PUT /admin/v1/integrations/{slug}/credentials."
        )
    elif error.upstream_status:
        text = f"Upstream '{slug}' answered {said}"
    else:
        text = f"Upstream '{slug}' failed mid-stream: {message}"
    code = f"upstream_{error.upstream_status}" if error.upstream_status else "upstream_stream_error"
    return failure(
        error.failure_class,
        text,
        code=code,
        upstream_status=error.upstream_status,
        provider_code=error.provider_code,
        retry_after_s=error.retry_after_s,
    )


def connection_failure(slug: str, detail: str) -> ErrorInfo:
    return failure(
        FailureClass.CONNECTION, f"Could not reach upstream '{slug}': {detail}", code="upstream_unreachable"
    )


def timeout_failure(slug: str, waited_s: float) -> ErrorInfo:
    return failure(
        FailureClass.TIMEOUT,
        f"Upstream '{slug}' did not answer within {waited_s:.1f}s "
        "(this attempt's share of the request's deadline).",
        code="upstream_timeout",
    )


def stream_cut(slug: str, detail: str) -> ErrorInfo:
    return failure(
        FailureClass.STREAM_CUT, f"Upstream '{slug}' stream broke: {detail}", code="upstream_stream_error"
    )
