"""Walks the target list: calls each worker pool in turn until one answers or the error is final.

`should_fall_back` is the policy (pure); `dispatch` does the NATS calls.
"""

from __future__ import annotations

import time

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from keyrail_common import subjects
from keyrail_common.errors import make_error
from keyrail_common.messages import (
    ProviderCall,
    ProviderResult,
    RouteRequest,
    Target,
    encode,
    provider_result_decoder,
)

# A client error (400, 413, 422) would fail the same way on the next target.
_FINAL_STATUSES = {400, 413, 422}


def should_fall_back(result: ProviderResult) -> bool:
    return not result.ok and result.http_status not in _FINAL_STATUSES


def _pool_failure(target: Target, exc: Exception) -> ProviderResult:
    if isinstance(exc, NoRespondersError):
        error = make_error(
            503,
            f"No '{target.family}' provider worker is running for '{target.provider_slug}'. "
            f"Start one with: keyrail worker --providers {target.family}",
            code="worker_pool_unavailable",
            error_class="no_worker",
        )
    else:
        error = make_error(
            504,
            f"'{target.provider_slug}' did not answer within {target.timeout_s:.0f}s.",
            code="upstream_timeout",
            error_class="timeout",
        )
    return ProviderResult(
        ok=False, http_status=error.http_status, provider_slug=target.provider_slug, error=error
    )


def provider_call(request: RouteRequest, target: Target, position: int, routed_ns: int) -> ProviderCall:
    return ProviderCall(
        request_id=request.request_id,
        org_id=request.org_id,
        project_id=request.project_id,
        attempt=position + 1,
        fallback_position=position,
        target=target,
        body=request.body,
        received_ns=request.received_ns,
        routed_ns=routed_ns,
        stream=request.stream,
        stream_inbox=request.stream_inbox,
        tags=request.tags,
    )


async def dispatch(nc: NATS, request: RouteRequest, targets: list[Target]) -> ProviderResult:
    """Try targets in order; the result carries how many attempts it took."""
    routed_ns = time.time_ns()
    result = ProviderResult(ok=False, http_status=503)
    for position, target in enumerate(targets):
        call = provider_call(request, target, position, routed_ns)
        try:
            reply = await nc.request(
                subjects.provider_pool(target.family), encode(call), timeout=target.timeout_s
            )
            result = provider_result_decoder.decode(reply.data)
        except (NoRespondersError, NatsTimeout) as exc:
            result = _pool_failure(target, exc)
        result.attempts = position + 1
        if not should_fall_back(result):
            break
    return result
