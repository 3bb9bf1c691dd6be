"""`POST /v1/chat/completions`: the chat body's own checks, then routing (routing.py), answered
as JSON or as server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_common.errors import error_body
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.messages import (
    RouteRequest,
    StreamChunk,
    StreamEnd,
    stream_frame_decoder,
)
from keyrail_common.registry import Operation
from keyrail_ingress.context import IngressContext
from keyrail_ingress.metrics import observe_hops
from keyrail_ingress.request_record import RequestRecord, upstream_ms
from keyrail_ingress.routing import NO_ERROR, accept, answer, ask_router, deadline_wait_s, route_request
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


async def chat_completions(request: Request) -> Response | SSEResponse:
    ctx: IngressContext = request.app.state.ctx
    record = RequestRecord(ctx)
    accepted = await accept(request, ctx, record, _head_decoder)
    if isinstance(accepted, Response):
        return accepted
    head = accepted.head
    if not head.messages:
        return record.fail(
            failure(
                FailureClass.BAD_REQUEST, "'messages' must contain at least one message.", param="messages"
            )
        )
    stream = bool(head.stream)
    route = route_request(ctx, request, record, accepted, head.model, head.metadata, Operation.CHAT, stream)
    if head.stream:
        return await _stream(ctx, record, route)
    return await answer(ctx, record, route)


async def _stream(ctx: IngressContext, record: RequestRecord, route: RouteRequest) -> Response | SSEResponse:
    inbox, frames_queue = ctx.stream_inboxes.open()
    route.stream_inbox = inbox
    result = await ask_router(ctx, route)
    record.apply_result(result)  # the stream's end frame brings the usage and the cost
    if not result.ok:
        ctx.stream_inboxes.close(inbox)
        return record.fail(result.error or NO_ERROR, result)
    observe_hops(result.timings, result.timings.first_byte_ns)
    overhead_ms = record.elapsed_ms() - upstream_ms(result.timings, result.timings.first_byte_ns)
    headers = record.headers(result, overhead_ms)

    async def frames() -> AsyncIterator[bytes]:
        received = 0
        end: StreamEnd | None = None
        error: ErrorInfo | None = None
        try:
            while end is None or received < end.chunks:
                async with asyncio.timeout(deadline_wait_s(route.deadline_ns)):
                    frame = stream_frame_decoder.decode(await frames_queue.get())
                if isinstance(frame, StreamChunk):
                    if received == 0:
                        record.row.ttft_ms = record.elapsed_ms()
                    received += 1
                    yield b"data: " + frame.data + b"\n\n"
                else:
                    end = frame
            error = end.error
            record.apply_result(end)
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
