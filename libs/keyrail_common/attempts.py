"""The attempt recorder: the one place that turns an attempt into its answer and its activity row.

A worker records the attempts it makes; the router records the ones no worker made (no worker
running, an adapter this version lacks, the deadline gone). Either way the result the router and
the ingress read, the stream's end frame and the attempt's activity row come from here, and the
cost is computed once, from the usage the upstream reported.
"""

from __future__ import annotations

import time
from decimal import Decimal

from keyrail_common import cost
from keyrail_common.cost import cost_status
from keyrail_common.failures import ErrorInfo
from keyrail_common.messages import (
    ZERO_COST,
    ActivityRow,
    ProviderCall,
    ProviderResult,
    StreamEnd,
    Timings,
    Usage,
)


def usage_source(usage: Usage | None, answered: bool) -> str:
    """Whether a row's tokens are the upstream's word: never a silent zero for a missing usage."""
    if usage is not None:
        return "reported"
    return "missing" if answered else ""


class AttemptRecorder:
    def __init__(self, call: ProviderCall) -> None:
        self.call = call
        self.started = time.perf_counter()
        self.timings = Timings(
            received_ns=call.received_ns, routed_ns=call.routed_ns, upstream_sent_ns=time.time_ns()
        )
        self.first_content: float = 0.0
        self.error: ErrorInfo | None = None
        self.http_status = 200
        self._usage: Usage | None = None
        self._cost: Decimal | None = ZERO_COST

    @property
    def usage(self) -> Usage | None:
        return self._usage

    @usage.setter
    def usage(self, usage: Usage | None) -> None:
        self._usage = usage
        self._cost = cost.attempt_cost(self.call.target.prices, usage) if usage is not None else ZERO_COST

    @property
    def cost_usd(self) -> Decimal | None:
        """What the upstream billed: from the reported usage; an answer without usage is unpriced
        (its tokens are unknown), a failure without usage was not billed (a real 0)."""
        if self._usage is None and self.error is None:
            return None
        return self._cost

    def mark_content(self) -> None:
        if not self.first_content:
            self.first_content = time.perf_counter()

    def fail(self, error: ErrorInfo) -> ProviderResult:
        self.error = error
        self.http_status = error.http_status
        target = self.call.target
        return ProviderResult(
            ok=False,
            http_status=error.http_status,
            provider=target.provider,
            provider_slug=target.provider_slug,
            model=target.model,
            attempts=self.call.attempt,
            error=error,
            timings=self.timings,
            config_id=self.call.config_id,
            virtual_model=self.call.virtual_model,
        )

    def succeed(self, body: bytes = b"", streaming: bool = False) -> ProviderResult:
        target = self.call.target
        return ProviderResult(
            ok=True,
            http_status=200,
            provider=target.provider,
            provider_slug=target.provider_slug,
            model=target.model,
            attempts=self.call.attempt,
            body=body,
            config_id=self.call.config_id,
            virtual_model=self.call.virtual_model,
            usage=self._usage,
            cost_usd=self.cost_usd,
            price_version=target.prices.version,
            streaming=streaming,
            timings=self.timings,
        )

    def stream_end(self, chunks: int, error: ErrorInfo | None) -> StreamEnd:
        """The last frame of a stream that reached the client; an error here ends it mid-way."""
        if error is not None:
            self.error, self.http_status = error, error.http_status
        target = self.call.target
        self.timings.done_ns = time.time_ns()
        return StreamEnd(
            chunks=chunks,
            provider=target.provider,
            provider_slug=target.provider_slug,
            model=target.model,
            attempts=self.call.attempt,
            usage=self._usage,
            cost_usd=self.cost_usd,
            price_version=target.prices.version,
            error=error,
            timings=self.timings,
        )

    def row(self) -> ActivityRow:
        call, target = self.call, self.call.target
        usage = self._usage or Usage()
        cost_usd = self.cost_usd
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
            latency_ms=(time.perf_counter() - self.started) * 1000,
            ttft_ms=(self.first_content - self.started) * 1000 if self.first_content else 0.0,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            usage_source=usage_source(self._usage, self.error is None),
            cost_usd=cost_usd,
            cost_status=cost_status(cost_usd),
            price_version=target.prices.version,
            credential_version=target.credential_version,
            tags=call.tags,
            fallback_position=call.fallback_position,
            stream=call.stream,
            config_id=call.config_id,
            virtual_model=call.virtual_model,
        )
