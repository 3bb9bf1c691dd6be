"""What every data-plane endpoint does around its own body: authenticate, bound the body, set the
deadline, ask the router, and answer a non-streaming result.

The hot path: msgspec only, one NATS request to the router, the upstream body forwarded as
bytes, the activity row published off the request path.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

import msgspec
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_common.config_state import ApiKeyRecord
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.messages import ProviderResult, RouteRequest, encode, provider_result_decoder
from keyrail_common.registry import Operation
from keyrail_common.routable import CONFIG_HEADER
from keyrail_common.wire import decode_or_refuse
from keyrail_ingress.auth import api_key_for, key_refusal
from keyrail_ingress.context import IngressContext
from keyrail_ingress.metrics import observe_hops
from keyrail_ingress.request_record import RequestRecord, upstream_ms

_ENVELOPE_ROOM = 64 * 1024
# The ingress waits this much past the request's deadline for the router's own timeout answer.
_ROUTER_GRACE_S = 2.0
TIMEOUT_HEADER = "x-keyrail-timeout-ms"
NO_ERROR = failure(FailureClass.WORKER_ERROR, "The gateway gave no result and no error.")


H = TypeVar("H")


class Accepted(Generic[H]):
    """A request that passed authentication, the size limit and its body's decoding."""

    def __init__(self, key: ApiKeyRecord, body: bytes, timeout_s: float, head: H) -> None:
        self.key = key
        self.body = body
        self.timeout_s = timeout_s
        self.head = head  # the fields of the body the gateway reads


def request_timeout_s(request: Request, default_s: float) -> float | ErrorInfo:
    """The request's budget: the deployment's timeout, or less when the client asks for less."""
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default_s
    try:
        millis = int(raw)
    except ValueError:
        millis = 0
    if millis <= 0:
        return failure(
            FailureClass.BAD_REQUEST,
            f"{TIMEOUT_HEADER} must be a positive number of milliseconds (got {raw!r}).",
            code="invalid_header",
            param=TIMEOUT_HEADER,
        )
    return min(millis / 1000, default_s)


async def accept(
    request: Request, ctx: IngressContext, record: RequestRecord, head_decoder: msgspec.json.Decoder[H]
) -> Accepted[H] | Response:
    key = api_key_for(ctx.projection.state, request)
    if key is None:
        return record.fail(key_refusal(ctx.projection.state, request))
    record.row.org_id, record.row.project_id, record.row.api_key_id = key.org_id, key.project_id, key.key_id
    body = await request.body()
    # The body crosses the bus whole; leave room for the envelope around it.
    limit = ctx.nc.max_payload - _ENVELOPE_ROOM
    if len(body) > limit:
        return record.fail(
            failure(
                FailureClass.REQUEST_TOO_LARGE,
                f"Request body is {len(body)} bytes; this deployment accepts at most {limit} "
                "(the NATS max_payload less the envelope). Raise max_payload on the NATS servers.",
                code="request_too_large",
            )
        )
    try:
        head = head_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return record.bad_body(exc)
    timeout_s = request_timeout_s(request, ctx.settings.request_timeout_s)
    if isinstance(timeout_s, ErrorInfo):
        return record.fail(timeout_s)
    return Accepted(key, body, timeout_s, head)


def route_request(
    ctx: IngressContext,
    request: Request,
    record: RequestRecord,
    accepted: Accepted[H],
    model: str,
    metadata: dict[str, str] | None,
    operation: Operation,
    stream: bool = False,
) -> RouteRequest:
    """The router's request for this client request; the request row learns model and tags."""
    record.row.model = model
    record.row.tags = tags(request, metadata)
    record.row.stream = stream
    return RouteRequest(
        request_id=record.request_id,
        org_id=accepted.key.org_id,
        project_id=accepted.key.project_id,
        model=model,
        body=accepted.body,
        received_ns=record.received_ns,
        min_config_seq=ctx.projection.applied_seq,
        stream=stream,
        pinned_slug=request.headers.get("x-keyrail-provider", ""),
        tags=record.row.tags,
        operation=operation,
        deadline_ns=record.received_ns + int(accepted.timeout_s * 1e9),
        config_id=request.headers.get(CONFIG_HEADER, ""),
    )


def tags(request: Request, metadata: dict[str, str] | None) -> list[str]:
    raw = request.headers.get("x-keyrail-tags", "")
    if metadata and "tags" in metadata:
        raw = f"{raw},{metadata['tags']}"
    return [t.strip() for t in raw.split(",") if t.strip()]


def deadline_wait_s(deadline_ns: int) -> float:
    return max((deadline_ns - time.time_ns()) / 1e9, 0.0) + _ROUTER_GRACE_S


async def ask_router(ctx: IngressContext, route: RouteRequest) -> ProviderResult:
    wait_s = deadline_wait_s(route.deadline_ns)
    try:
        reply = await ctx.nc.request(subjects.ROUTE, encode(route), timeout=wait_s)
    except NoRespondersError:
        error = failure(
            FailureClass.NO_WORKER,
            "No router is running. Start one with: keyrail router",
            code="service_unavailable",
        )
        return ProviderResult(ok=False, http_status=error.http_status, attempts=0, error=error)
    except NatsTimeout:
        error = failure(
            FailureClass.GATEWAY_TIMEOUT, f"No answer within {wait_s:.1f}s.", code="gateway_timeout"
        )
        return ProviderResult(ok=False, http_status=error.http_status, attempts=0, error=error)
    result = decode_or_refuse(provider_result_decoder, reply.data, subjects.ROUTE)
    if isinstance(result, str):
        error = failure(FailureClass.WORKER_ERROR, f"The ingress could not read the answer: {result}.")
        return ProviderResult(ok=False, http_status=error.http_status, attempts=0, error=error)
    return result


async def answer(ctx: IngressContext, record: RequestRecord, route: RouteRequest) -> Response:
    """Route a non-streaming request and answer with the upstream's body (or the failure)."""
    result = await ask_router(ctx, route)
    record.apply_result(result)
    if not result.ok:
        return record.fail(result.error or NO_ERROR, result)
    observe_hops(result.timings, result.timings.done_ns)
    overhead_ms = record.elapsed_ms() - upstream_ms(result.timings, result.timings.done_ns)
    headers = record.headers(result, overhead_ms)
    record.finish(200, None, overhead_ms)
    return Response(result.body, media_type="application/json", headers=headers)
