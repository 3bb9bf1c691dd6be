"""The stream relay: upstream SSE events → the adapter's translator → frames to the ingress inbox.

The router is answered once the first frame went out (the client is committed to this target),
or with the failure when the upstream failed before that, so the router can still fall back.
After that, a failure ends the client's stream with an error frame.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from keyrail_common.attempts import AttemptRecorder
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.messages import ProviderCall, ProviderResult, StreamChunk, encode
from keyrail_workers.adapters.base import StreamTranslator
from keyrail_workers.http_client import UpstreamConnectionError, UpstreamResponse, UpstreamTimeout
from keyrail_workers.sse import sse_events
from keyrail_workers.upstream_errors import stream_cut, upstream_failure

Publish = Callable[[str, bytes], Awaitable[None]]
Reply = Callable[[ProviderResult], Awaitable[None]]


class StreamRelay:
    def __init__(
        self,
        call: ProviderCall,
        attempt: AttemptRecorder,
        secrets: list[str],
        reply: Reply,
        publish: Publish,
    ) -> None:
        self._call = call
        self._attempt = attempt
        self._secrets = secrets
        self._reply = reply
        self._publish = publish
        self.seq = 0

    @property
    def started(self) -> bool:
        """Frames reached the client: no fallback any more, failures end the stream."""
        return self.seq > 0

    async def run(
        self, translator: StreamTranslator, response: UpstreamResponse, on_commit: Callable[[], None]
    ) -> None:
        slug = self._call.target.provider_slug
        inbox = self._call.stream_inbox
        attempt = self._attempt
        error: ErrorInfo | None = None
        try:
            async for event, data in sse_events(response.lines()):
                step = translator.feed(event, data)
                if step.content and not attempt.first_content:
                    attempt.mark_content()
                    on_commit()
                if step.error is not None:
                    error = upstream_failure(slug, step.error, self._secrets)
                    break
                for frame in step.frames:
                    await self._publish(inbox, encode(StreamChunk(seq=self.seq, data=frame)))
                    self.seq += 1
                    if self.seq == 1:
                        await self._reply(attempt.succeed(streaming=True))
                if step.done:
                    break
            else:
                cut = translator.finish()
                if cut is not None:
                    error = upstream_failure(slug, cut, self._secrets)
        except (UpstreamConnectionError, UpstreamTimeout) as exc:
            error = stream_cut(slug, type(exc).__name__)
        attempt.usage = translator.usage
        await self.end(error)

    async def end(self, error: ErrorInfo | None) -> None:
        """The stream's last frame; before any frame, the failure goes to the router instead."""
        if not self.started:
            await self._reply(
                self._attempt.fail(
                    error
                    or failure(
                        FailureClass.STREAM_CUT,
                        f"Upstream '{self._call.target.provider_slug}' sent an empty stream.",
                        code="upstream_stream_error",
                    )
                )
            )
            return
        await self._publish(self._call.stream_inbox, encode(self._attempt.stream_end(self.seq, error)))
