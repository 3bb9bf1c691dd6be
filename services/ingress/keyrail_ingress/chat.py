"""`POST /v1/chat/completions`: authenticate, validate, ask the router, answer (JSON or SSE).

The hot path: msgspec only, one NATS request to the router, the upstream body forwarded as
bytes, the activity row published off the request path.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_common.errors import error_body
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.messages import (
    ActivityRow,
    ProviderResult,
    RouteRequest,
    StreamChunk,
    StreamEnd,
    Timings,
    Usage,
    encode,
    provider_result_decoder,
    stream_frame_decoder,
)
from keyrail_common.wire import decode_or_refuse
from keyrail_ingress.auth import api_key_for
from keyrail_ingress.context import IngressContext
from keyrail_ingress.metrics import OVERHEAD_SECONDS, REQUESTS, observe_hops
from keyrail_ingress.responses import bad_body, error_response
from keyrail_ingress.sse import SSEResponse


class StreamOptions(msgspec.Struct):
    """OpenAI's stream options; passed through to the provider."""

    include_usage: Annotated[
        bool | None, Meta(description="Send a final chunk with `usage` (and no choices) before `[DONE]`.")
    ] = None


# The Meta annotations below only describe the fields for the API reference (openapi.py): they
# carry no constraints, so decoding is exactly as fast as without them.
class ChatRequestHead(msgspec.Struct):
    """The fields the gateway itself reads. Every other field of OpenAI's
    CreateChatCompletionRequest (temperature, tools, response_format, ...) passes through to the
    provider untouched."""

    model: Annotated[
        str,
        Meta(
            description="`<provider-slug>/<model>` pins one integration; `<provider>/<model>` routes "
            "through any in-scope integration of that provider with the model enabled.",
            examples=["openai-prod-general/gpt-4o-mini", "openai/gpt-4o-mini"],
        ),
    ]
    messages: Annotated[
        list[dict[str, Any]],
        Meta(description='OpenAI chat messages (`{"role": ..., "content": ...}`); at least one.'),
    ]
    stream: Annotated[
        bool | None, Meta(description="`true` answers with server-sent events (`text/event-stream`).")
    ] = None
    stream_options: StreamOptions | None = None
    metadata: Annotated[
        dict[str, str] | None,
        Meta(
            description="Passed through; a `tags` entry (comma-separated) adds activity-log tags, "
            "like the `x-keyrail-tags` header."
        ),
    ] = None


_head_decoder = msgspec.json.Decoder(ChatRequestHead)
_ENVELOPE_ROOM = 64 * 1024
# The ingress waits this much past the request's deadline for the router's own timeout answer.
_ROUTER_GRACE_S = 2.0
TIMEOUT_HEADER = "x-keyrail-timeout-ms"


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


def request_tags(request: Request, head: ChatRequestHead) -> list[str]:
    raw = request.headers.get("x-keyrail-tags", "")
    if head.metadata and "tags" in head.metadata:
        raw = f"{raw},{head.metadata['tags']}"
    return [t.strip() for t in raw.split(",") if t.strip()]


_NO_ERROR = failure(FailureClass.WORKER_ERROR, "The gateway gave no result and no error.")


class RequestRecord:
    """Measures one client request and turns it into response headers and the request activity row."""

    def __init__(self, ctx: IngressContext) -> None:
        self.ctx = ctx
        self.started = time.perf_counter()
        self.received_ns = time.time_ns()
        self.request_id = "req_" + os.urandom(12).hex()
        self.row = ActivityRow(
            request_id=self.request_id, kind="request", attempt=0, ts_ms=self.received_ns // 1_000_000
        )

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def headers(
        self, result: ProviderResult | None = None, overhead_ms: float | None = None
    ) -> dict[str, str]:
        headers = {"x-keyrail-request-id": self.request_id}
        if result is not None and result.provider_slug:
            headers["x-keyrail-provider-slug"] = result.provider_slug
            headers["x-keyrail-model"] = result.model
        if result is not None:
            headers["x-keyrail-attempts"] = str(result.attempts)
        headers["x-keyrail-overhead-ms"] = (
            f"{overhead_ms if overhead_ms is not None else self.elapsed_ms():.3f}"
        )
        return headers

    def apply_result(
        self, provider: str, slug: str, model: str, attempts: int, usage: Usage | None, cost_usd: float
    ) -> None:
        row = self.row
        row.provider, row.provider_slug, row.model, row.attempt = provider, slug, model or row.model, attempts
        row.cost_usd = cost_usd
        if usage is not None:
            row.prompt_tokens, row.completion_tokens = usage.prompt_tokens, usage.completion_tokens
            row.cached_tokens, row.reasoning_tokens = usage.cached_tokens, usage.reasoning_tokens

    def finish(self, http_status: int, error: ErrorInfo | None = None, overhead_ms: float = 0.0) -> None:
        row = self.row
        row.http_status = http_status
        row.latency_ms = self.elapsed_ms()
        row.overhead_ms = overhead_ms
        if error is not None:
            row.status, row.error_class, row.error_message = "error", error.error_class, error.message
        self.ctx.activity.record(row)
        REQUESTS.labels(row.provider_slug or "-", str(http_status)).inc()
        OVERHEAD_SECONDS.observe(overhead_ms / 1000)
        self.ctx.access_log.line(
            request_id=self.request_id,
            provider_slug=row.provider_slug,
            status=http_status,
            ms=round(row.latency_ms, 3),
        )

    def fail(self, error: ErrorInfo, result: ProviderResult | None = None) -> Response:
        headers = self.headers(result)
        if error.retry_after_ms:  # the upstream's own delay, rounded up to whole seconds (RFC 9110)
            headers["retry-after"] = str(-(-error.retry_after_ms // 1000))
        self.finish(error.http_status, error, self.elapsed_ms())
        return error_response(error, headers)


def _upstream_ms(timings: Timings, until_ns: int) -> float:
    if not timings.upstream_sent_ns or not until_ns:
        return 0.0
    return (until_ns - timings.upstream_sent_ns) / 1e6


def _deadline_wait_s(deadline_ns: int) -> float:
    return max((deadline_ns - time.time_ns()) / 1e9, 0.0) + _ROUTER_GRACE_S


async def _ask_router(ctx: IngressContext, route: RouteRequest) -> ProviderResult:
    wait_s = _deadline_wait_s(route.deadline_ns)
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


async def chat_completions(request: Request) -> Response | SSEResponse:
    ctx: IngressContext = request.app.state.ctx
    record = RequestRecord(ctx)
    key = api_key_for(ctx.projection.state, request)
    if key is None:
        return record.fail(
            failure(
                FailureClass.UNAUTHENTICATED,
                "Invalid or missing API key. Send 'Authorization: Bearer kr-…'.",
                code="invalid_api_key",
            )
        )
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
        head = _head_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        response = bad_body(exc)
        record.finish(400, failure(FailureClass.BAD_REQUEST, "invalid request body"))
        response.headers.update(record.headers())
        return response
    if not head.messages:
        return record.fail(
            failure(
                FailureClass.BAD_REQUEST, "'messages' must contain at least one message.", param="messages"
            )
        )
    timeout_s = request_timeout_s(request, ctx.settings.request_timeout_s)
    if isinstance(timeout_s, ErrorInfo):
        return record.fail(timeout_s)
    record.row.model = head.model
    record.row.tags = request_tags(request, head)
    record.row.stream = bool(head.stream)
    route = RouteRequest(
        request_id=record.request_id,
        org_id=key.org_id,
        project_id=key.project_id,
        model=head.model,
        body=body,
        received_ns=record.received_ns,
        min_config_seq=ctx.projection.applied_seq,
        stream=bool(head.stream),
        pinned_slug=request.headers.get("x-keyrail-provider", ""),
        tags=record.row.tags,
        deadline_ns=record.received_ns + int(timeout_s * 1e9),
    )
    if head.stream:
        return await _stream(ctx, record, route)
    result = await _ask_router(ctx, route)
    record.apply_result(
        result.provider, result.provider_slug, result.model, result.attempts, result.usage, result.cost_usd
    )
    if not result.ok:
        return record.fail(result.error or _NO_ERROR, result)
    observe_hops(result.timings, result.timings.done_ns)
    overhead_ms = record.elapsed_ms() - _upstream_ms(result.timings, result.timings.done_ns)
    headers = record.headers(result, overhead_ms)
    record.finish(200, None, overhead_ms)
    return Response(result.body, media_type="application/json", headers=headers)


async def _stream(ctx: IngressContext, record: RequestRecord, route: RouteRequest) -> Response | SSEResponse:
    inbox, frames_queue = ctx.stream_inboxes.open()
    route.stream_inbox = inbox
    result = await _ask_router(ctx, route)
    record.apply_result(result.provider, result.provider_slug, result.model, result.attempts, None, 0.0)
    if not result.ok:
        ctx.stream_inboxes.close(inbox)
        return record.fail(result.error or _NO_ERROR, result)
    observe_hops(result.timings, result.timings.first_byte_ns)
    overhead_ms = record.elapsed_ms() - _upstream_ms(result.timings, result.timings.first_byte_ns)
    headers = record.headers(result, overhead_ms)

    async def frames() -> AsyncIterator[bytes]:
        received = 0
        end: StreamEnd | None = None
        error: ErrorInfo | None = None
        try:
            while end is None or received < end.chunks:
                async with asyncio.timeout(_deadline_wait_s(route.deadline_ns)):
                    frame = stream_frame_decoder.decode(await frames_queue.get())
                if isinstance(frame, StreamChunk):
                    if received == 0:
                        record.row.ttft_ms = record.elapsed_ms()
                    received += 1
                    yield b"data: " + frame.data + b"\n\n"
                else:
                    end = frame
            error = end.error
            record.apply_result(
                end.provider, end.provider_slug, end.model, end.attempts, end.usage, end.cost_usd
            )
            if error is None:
                yield b"data: [DONE]\n\n"
            else:
                yield b"data: " + error_body(error) + b"\n\n"
        except TimeoutError:
            error = failure(
                FailureClass.GATEWAY_TIMEOUT, "The stream stalled: no chunk before the request's deadline."
            )
            yield b"data: " + error_body(error) + b"\n\n"
        except (GeneratorExit, asyncio.CancelledError):
            # The client went away mid-stream: the activity row says so instead of claiming a 200.
            error = failure(FailureClass.CLIENT_DISCONNECTED, "The client closed the stream.")
            await ctx.nc.publish(subjects.STREAM_CANCEL, record.request_id.encode())
            raise
        finally:
            ctx.stream_inboxes.close(inbox)
            record.finish(200 if error is None else error.http_status, error, overhead_ms)

    return SSEResponse(frames(), headers)
