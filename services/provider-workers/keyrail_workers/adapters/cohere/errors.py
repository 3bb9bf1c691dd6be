"""Cohere error bodies `{"id"?, "message"}` → the failure vocabulary (reference §8).

Cohere has no error codes: the status decides (adapters/status.py), except 498, which Cohere
uses for a request or response containing a deny-listed token (the caller's problem, not a
capacity one as at Groq).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import UpstreamError
from keyrail_workers.adapters.status import class_for_status
from keyrail_workers.retry_after import retry_after_for

_BY_STATUS = {498: FailureClass.CALLER_ERROR}


class _ErrorBody(msgspec.Struct):
    message: str = ""


_decode_error = msgspec.json.Decoder(_ErrorBody).decode


def _message(body: bytes) -> str:
    """The upstream's own words, untruncated (scrubbing needs whole secrets)."""
    try:
        return _decode_error(body).message
    except (msgspec.DecodeError, msgspec.ValidationError):
        return body.decode(errors="replace").strip()


def classify_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    failure_class = _BY_STATUS.get(status) or class_for_status(status)
    return UpstreamError(
        failure_class=failure_class,
        message=_message(body),
        upstream_status=status,
        retry_after_s=retry_after_for(failure_class, headers),
    )
