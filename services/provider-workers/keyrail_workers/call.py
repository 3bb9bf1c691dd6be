"""One provider call: credentials from Vault, the upstream HTTP request, reply and stream frames.

Non-streaming: the worker replies to the router with the upstream body.
Streaming: chunks go straight to the ingress inbox; the router gets a reply as soon as the
first chunk went out (or the upstream failed before any content, so it can still fall back).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from keyrail_common.access_log import AccessLog
from keyrail_common.activity import ActivityPublisher
from keyrail_common.errors import make_error
from keyrail_common.messages import (
    ActivityRow,
    ErrorInfo,
    ProviderCall,
    ProviderResult,
    StreamChunk,
    StreamEnd,
    Timings,
    Usage,
    encode,
    provider_call_decoder,
)
from keyrail_common.vault import CachedCredentials
from keyrail_workers.http_client import (
    UpstreamConnectionError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
)
from keyrail_workers.metrics import UPSTREAM_SECONDS, WORKER_CALLS
from keyrail_workers.providers.openai_family import (
    OpenAIStreamReader,
    build_chat_request,
    response_usage,
    spec_for,
)
from keyrail_workers.sse import DONE, sse_data
from keyrail_workers.upstream_errors import (
    midstream_error,
    upstream_connection_error,
    upstream_http_error,
    upstream_timeout,
)

Reply = Callable[[ProviderResult], Awaitable[None]]


class _Attempt:
    """What one attempt measured, turned into the reply, the activity row and the log line."""

    def __init__(self, call: ProviderCall) -> None:
        self.call = call
        self.started = time.perf_counter()
        self.timings = Timings(
            received_ns=call.received_ns, routed_ns=call.routed_ns, upstream_sent_ns=time.time_ns()
        )
        self.first_content: float = 0.0
        self.usage: Usage | None = None
        self.error: ErrorInfo | None = None
        self.http_status = 200

    def fail(self, error: ErrorInfo) -> ProviderResult:
        self.error = error
        self.http_status = error.http_status
        return ProviderResult(
            ok=False,
            http_status=error.http_status,
            provider=self.call.target.provider,
            provider_slug=self.call.target.provider_slug,
            model=self.call.target.model,
            error=error,
            timings=self.timings,
        )

    def succeed(self, body: bytes = b"", streaming: bool = False) -> ProviderResult:
        target = self.call.target
        return ProviderResult(
            ok=True,
            http_status=200,
            provider=target.provider,
            provider_slug=target.provider_slug,
            model=target.model,
            body=body,
            usage=self.usage,
            cost_usd=target.prices.cost_usd(self.usage) if self.usage else 0.0,
            streaming=streaming,
            timings=self.timings,
        )

    def row(self) -> ActivityRow:
        call, target = self.call, self.call.target
        usage = self.usage or Usage()
        latency_ms = (time.perf_counter() - self.started) * 1000
        return ActivityRow(
            request_id=call.request_id,
            kind="attempt",
            attempt=call.attempt,
            ts_ms=self.timings.upstream_sent_ns // 1_000_000,
            org_id=call.org_id,
            project_id=call.project_id,
            provider=target.provider,
            provider_slug=target.provider_slug,
            model=target.model,
            status="error" if self.error else "ok",
            http_status=self.http_status,
            error_class=self.error.error_class if self.error else "",
            error_message=self.error.message if self.error else "",
            latency_ms=latency_ms,
            ttft_ms=(self.first_content - self.started) * 1000 if self.first_content else 0.0,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=target.prices.cost_usd(usage),
            tags=call.tags,
            fallback_position=call.fallback_position,
            stream=call.stream,
        )


class ProviderCallHandler:
    def __init__(
        self,
        nc: NATS,
        credentials: CachedCredentials,
        upstream: UpstreamPool,
        activity: ActivityPublisher,
        access_log: AccessLog,
    ) -> None:
        self._nc = nc
        self._credentials = credentials
        self._upstream = upstream
        self._streams: dict[str, asyncio.Task[None]] = {}
        self._activity = activity
        self._access_log = access_log

    async def on_call(self, msg: Msg) -> None:
        call = provider_call_decoder.decode(msg.data)
        attempt = _Attempt(call)
        replied = False

        async def reply(result: ProviderResult) -> None:
            nonlocal replied
            if not replied:
                replied = True
                await msg.respond(encode(result))

        if call.stream:
            self._streams[call.request_id] = asyncio.current_task()  # type: ignore[assignment]
        try:
            await self._call(call, attempt, reply)
        except asyncio.CancelledError:
            # Only `cancel_stream` cancels these tasks: the client left, so stop paying the upstream.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            attempt.fail(make_error(499, "The client closed the stream.", error_class="client_disconnected"))
        except Exception as exc:  # the router must always get an answer; the reason is logged by class only
            await reply(
                attempt.fail(make_error(502, f"Worker failed: {type(exc).__name__}", error_class="worker"))
            )
        finally:
            self._streams.pop(call.request_id, None)
            if not replied:
                await reply(attempt.fail(attempt.error or make_error(502, "no result", error_class="worker")))
            attempt.timings.done_ns = time.time_ns()
            self._activity.record(attempt.row())
            WORKER_CALLS.labels(call.target.provider_slug, str(attempt.http_status)).inc()
            self._access_log.line(
                request_id=call.request_id,
                provider_slug=call.target.provider_slug,
                attempt=call.attempt,
                status=attempt.http_status,
                stream=call.stream,
            )

    async def cancel_stream(self, msg: Msg) -> None:
        """`keyrail.stream.cancel`: the ingress lost the client of this request's stream."""
        task = self._streams.get(msg.data.decode(errors="replace"))
        if task is not None:
            task.cancel()

    async def _call(self, call: ProviderCall, attempt: _Attempt, reply: Reply) -> None:
        target = call.target
        try:
            credentials = await self._credentials.get(target.credential_ref, target.credential_version)
        except Exception:
            await reply(
                attempt.fail(
                    make_error(
                        502,
                        f"Credentials of '{target.provider_slug}' could not be read from Vault.",
                        code="credentials_unavailable",
                        error_class="credentials",
                    )
                )
            )
            return
        api_key = str(credentials.get("api_key", ""))
        custom_headers = credentials.get("custom_auth_headers")
        custom_headers = custom_headers if isinstance(custom_headers, dict) else {}
        secrets = [str(v) for v in (*credentials.values(), *custom_headers.values()) if isinstance(v, str)]
        request = build_chat_request(
            spec_for(target.provider),
            target.base_url,
            api_key,
            target.model,
            call.body,
            call.stream,
            custom_headers,
        )
        try:
            response = await self._upstream.post(request.url, request.headers, request.body, target.timeout_s)
        except UpstreamTimeout:
            await reply(attempt.fail(upstream_timeout(target.provider_slug, target.timeout_s)))
            return
        except UpstreamConnectionError as exc:
            await reply(attempt.fail(upstream_connection_error(target.provider_slug, str(exc))))
            return
        attempt.timings.first_byte_ns = time.time_ns()
        UPSTREAM_SECONDS.labels(target.provider_slug).observe(time.perf_counter() - attempt.started)
        try:
            if response.status >= 400 or not call.stream:
                try:
                    body = await response.read()
                except UpstreamTimeout:  # the body stalled: a timeout (504) like a late response head
                    await reply(attempt.fail(upstream_timeout(target.provider_slug, target.timeout_s)))
                    return
                except UpstreamConnectionError as exc:
                    await reply(attempt.fail(upstream_connection_error(target.provider_slug, str(exc))))
                    return
                if response.status >= 400:
                    await reply(
                        attempt.fail(
                            upstream_http_error(target.provider_slug, response.status, body, secrets)
                        )
                    )
                    return
            else:
                await self._relay_stream(call, attempt, response, request.client_wants_usage, secrets, reply)
                return
        finally:
            response.release()
        attempt.usage = response_usage(body)
        attempt.timings.done_ns = time.time_ns()
        await reply(attempt.succeed(body))

    async def _relay_stream(
        self,
        call: ProviderCall,
        attempt: _Attempt,
        response: UpstreamResponse,
        client_wants_usage: bool,
        secrets: list[str],
        reply: Reply,
    ) -> None:
        target = call.target
        reader = OpenAIStreamReader(client_wants_usage)
        seq = 0
        publish = self._nc.publish
        inbox = call.stream_inbox
        end_error: ErrorInfo | None = None
        try:
            async for data in sse_data(response.lines()):
                if data == DONE:
                    break
                verdict = reader.read(data)
                if verdict.error is not None and seq == 0:
                    # Nothing reached the client yet: a failure the router may still fall back from.
                    await reply(attempt.fail(midstream_error(target.provider_slug, verdict.error, secrets)))
                    return
                if verdict.has_content and not attempt.first_content:
                    attempt.first_content = time.perf_counter()
                if verdict.forward:
                    await publish(inbox, encode(StreamChunk(seq=seq, data=data)))
                    seq += 1
                    if seq == 1:
                        await reply(attempt.succeed(streaming=True))
                if verdict.error is not None:
                    end_error = midstream_error(target.provider_slug, verdict.error, secrets)
                    break
            else:
                end_error = make_error(
                    502,
                    f"Upstream '{target.provider_slug}' closed the stream before [DONE].",
                    error_class="stream_cut",
                )
        except (UpstreamConnectionError, UpstreamTimeout) as exc:
            end_error = make_error(
                502,
                f"Upstream '{target.provider_slug}' stream broke: {type(exc).__name__}",
                code="upstream_stream_error",
                error_class="stream_cut",
            )
        if seq == 0:
            await reply(attempt.fail(end_error or make_error(502, "empty stream", error_class="stream_cut")))
            return
        attempt.usage = reader.usage
        if end_error is not None:
            attempt.error, attempt.http_status = end_error, end_error.http_status
        attempt.timings.done_ns = time.time_ns()
        await publish(
            inbox,
            encode(
                StreamEnd(
                    chunks=seq,
                    provider=target.provider,
                    provider_slug=target.provider_slug,
                    model=target.model,
                    attempts=call.attempt,
                    usage=reader.usage,
                    cost_usd=target.prices.cost_usd(reader.usage) if reader.usage else 0.0,
                    error=end_error,
                    timings=attempt.timings,
                )
            ),
        )
