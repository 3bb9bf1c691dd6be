"""The real worker path for adapter tests: `AttemptRunner` with a real `UpstreamPool` against a
local aiohttp server that records exactly what Keyrail sent and answers what the test says.

Only Vault is stood in for (the credential is the test's); the HTTP is real, on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from keyrail_common.attempts import AttemptRecorder
from keyrail_common.messages import (
    Prices,
    ProviderCall,
    ProviderResult,
    StreamChunk,
    StreamEnd,
    Target,
    stream_frame_decoder,
)
from keyrail_common.registry import Operation, load_registry
from keyrail_common.vault import CachedCredentials, CredentialStore
from keyrail_workers.http_client import UpstreamPool
from keyrail_workers.runner import AttemptRunner


@dataclass
class Sent:
    """One request as the local upstream received it."""

    method: str
    path_qs: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    events: bool = False  # an SSE body, sent one event per write (as an upstream streams it)


@dataclass
class LocalUpstream:
    url: str
    answer: Answer
    sent: list[Sent] = field(default_factory=list)


def json_request_headers(upstream: LocalUpstream, sent: Sent, auth: dict[str, str]) -> dict[str, str]:
    """Every header a non-streamed JSON request to the local upstream carries: these `auth`
    headers (lower-case names) and the transport's."""
    return {
        "host": upstream.url.removeprefix("http://"),
        "content-length": str(len(sent.body)),
        **auth,
        "content-type": "application/json",
        "accept": "application/json",
    }


@contextlib.asynccontextmanager
async def local_upstream(answer: Answer) -> AsyncIterator[LocalUpstream]:
    upstream = LocalUpstream(url="", answer=answer)

    async def handler(request: web.Request) -> web.StreamResponse:
        upstream.sent.append(
            Sent(
                request.method,
                request.path_qs,
                {k.lower(): v for k, v in request.headers.items()},
                await request.read(),
            )
        )
        answer = upstream.answer
        if not answer.events:
            return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
        response = web.StreamResponse(status=answer.status, headers=answer.headers)
        await response.prepare(request)
        for event in answer.body.split(b"\n\n"):
            if event.strip():
                await response.write(event + b"\n\n")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    upstream.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield upstream
    finally:
        await runner.cleanup()


class _Store(CredentialStore):
    def __init__(self, secret: dict[str, object]) -> None:
        self.secret = secret

    async def read(self, path: str, version: int) -> dict[str, object]:
        return dict(self.secret)


def provider_call(
    provider: str,
    adapter: str,
    model: str,
    body: dict[str, object],
    base_url: str,
    stream: bool = False,
    operation: Operation = Operation.CHAT,
    slug: str = "",
    prices: Prices | None = None,
) -> ProviderCall:
    now = time.time_ns()
    return ProviderCall(
        request_id="req_worker_path",
        org_id="org_1",
        project_id="proj_1",
        attempt=1,
        fallback_position=0,
        target=Target(
            integration_id="int_1",
            provider=provider,
            provider_slug=slug or f"{provider}-test",
            adapter=adapter,
            model=model,
            catalog_id=f"{provider}/{model}",
            base_url=base_url,
            credential_ref=f"integrations/org_1/{slug or provider + '-test'}",
            credential_version=1,
            prices=prices or Prices(),
        ),
        body=json.dumps(body).encode(),
        received_ns=now,
        routed_ns=now,
        deadline_ns=now + 10_000_000_000,
        attempt_deadline_ns=now + 10_000_000_000,
        stream=stream,
        stream_inbox="_INBOX.test.stream" if stream else "",
        operation=operation,
    )


@dataclass
class Outcome:
    replies: list[ProviderResult]
    chunks: list[bytes]
    end: StreamEnd | None
    attempt: AttemptRecorder
    frames: list[StreamChunk | StreamEnd]  # everything published to the stream inbox, in order


class WorkerPath:
    """One runner with its pool and caches (credentials, tokens) for many calls, as in a worker."""

    def __init__(self, secret: dict[str, object]) -> None:
        self.secret = secret
        self.pool = UpstreamPool(connect_timeout_s=5.0)
        self.runner = AttemptRunner(
            load_registry(), CachedCredentials(_Store(secret)), self.pool, self._publish
        )
        self._frames: dict[str, list[StreamChunk | StreamEnd]] = {}

    async def _publish(self, subject: str, data: bytes) -> None:
        self._frames.setdefault(subject, []).append(stream_frame_decoder.decode(data))

    async def run(self, call: ProviderCall) -> Outcome:
        replies: list[ProviderResult] = []

        async def reply(result: ProviderResult) -> None:
            replies.append(result)

        attempt = AttemptRecorder(call)
        await self.runner.run(call, attempt, reply)
        frames = self._frames.pop(call.stream_inbox, [])
        chunks = [f.data for f in frames if isinstance(f, StreamChunk)]
        ends = [f for f in frames if isinstance(f, StreamEnd)]
        return Outcome(replies, chunks, ends[0] if ends else None, attempt, frames)

    def close(self) -> None:
        self.pool.close()


async def run_attempt(call: ProviderCall, secret: dict[str, object]) -> Outcome:
    worker = WorkerPath(secret)
    try:
        return await worker.run(call)
    finally:
        worker.close()
