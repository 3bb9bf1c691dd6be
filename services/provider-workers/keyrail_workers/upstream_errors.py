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


def _credentials_endpoint(slug: str) -> str:
    return f"PUT /admin/v1/integrations/{slug}/credentials"


def upstream_failure(
    slug: str, error: UpstreamError, secrets: Iterable[str], not_found_hint: str = ""
) -> ErrorInfo:
    """An upstream's error response (or in-band stream error), as the client will read it.

    `not_found_hint` (the request's, from its adapter) says what a MODEL_ACCESS failure did not find.
    """
    message = scrub(error.message, secrets)[:_MESSAGE_LIMIT] or "no message"
    said = f"HTTP {error.upstream_status}: {message}" if error.upstream_status else message
    if error.failure_class is FailureClass.CREDENTIAL:
        text = (
            f"Upstream '{slug}' rejected the stored credential ({said}). Create a new key at the provider, "
            f"then rotate it: {_credentials_endpoint(slug)}."
        )
    elif error.failure_class is FailureClass.MODEL_ACCESS and not_found_hint:
        text = (
            f"Upstream '{slug}' answered {said.rstrip('. ')}. {scrub(not_found_hint, secrets)} "
            f"(the integration's credentials: {_credentials_endpoint(slug)})."
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


def refused_failure(slug: str, error: UpstreamError, secrets: Iterable[str]) -> ErrorInfo:
    """A call the adapter would not send as the integration is configured: no HTTP request was made.

    Nothing upstream spoke, so the error's `provider_code` is the adapter's own code for the refusal.
    """
    text = f"Integration '{slug}' cannot send this request: {scrub(error.message, secrets)}"
    if error.failure_class in (FailureClass.CREDENTIAL, FailureClass.MODEL_ACCESS):
        text += f" (the integration's credentials: {_credentials_endpoint(slug)})."
    return failure(error.failure_class, text, code=error.provider_code or None, param=error.param)


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
