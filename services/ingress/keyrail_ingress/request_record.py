"""One client request, measured: its id, response headers and its request activity row."""

from __future__ import annotations

import os
import time

import msgspec
from starlette.responses import Response

from keyrail_common.attempts import usage_source
from keyrail_common.cost import cost_status
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.messages import ActivityRow, ProviderResult, StreamEnd, Timings, Usage
from keyrail_ingress.context import IngressContext
from keyrail_ingress.metrics import OVERHEAD_SECONDS, REQUESTS
from keyrail_ingress.responses import bad_body, error_response


class RequestRecord:
    """Measures one client request and turns it into response headers and the request activity row."""

    def __init__(self, ctx: IngressContext) -> None:
        self.ctx = ctx
        self.started = time.perf_counter()
        self.received_ns = time.time_ns()
        # Time-ordered, like UUIDv7: 48 bits of milliseconds, then 48 random bits, so ids sort
        # with time (and a ClickHouse ORDER BY on them keeps a day's requests together).
        self.request_id = f"req_{self.received_ns // 1_000_000:012x}{os.urandom(6).hex()}"
        self._usage: Usage | None = None
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
            if result.config_id:
                headers["x-keyrail-config"] = result.config_id
        headers["x-keyrail-overhead-ms"] = (
            f"{overhead_ms if overhead_ms is not None else self.elapsed_ms():.3f}"
        )
        return headers

    def apply_result(self, answer: ProviderResult | StreamEnd) -> None:
        """The answering attempt's provider, usage and cost. The request's cost is the sum of its
        billed attempts; the attempts before it failed without usage, so they billed nothing."""
        row, usage = self.row, answer.usage
        row.provider, row.provider_slug = answer.provider, answer.provider_slug
        row.model, row.attempt = answer.model or row.model, answer.attempts
        row.cost_usd, row.cost_status = answer.cost_usd, cost_status(answer.cost_usd)
        row.price_version = answer.price_version
        if isinstance(answer, ProviderResult):  # a stream's end frame does not repeat the route
            row.config_id, row.virtual_model = answer.config_id, answer.virtual_model
        self._usage = usage
        if usage is not None:
            row.prompt_tokens, row.completion_tokens = usage.prompt_tokens, usage.completion_tokens
            row.cached_tokens, row.reasoning_tokens = usage.cached_tokens, usage.reasoning_tokens
            row.cache_write_tokens = usage.cache_write_tokens

    def finish(self, http_status: int, error: ErrorInfo | None = None, overhead_ms: float = 0.0) -> None:
        row = self.row
        row.http_status = http_status
        row.latency_ms = self.elapsed_ms()
        row.overhead_ms = overhead_ms
        if error is not None:
            row.status, row.error_class, row.error_message = "error", error.error_class, error.message
        if row.provider_slug:  # an upstream answered (or failed): was its usage reported?
            row.usage_source = usage_source(self._usage, error is None)
        self.ctx.activity.record(row)
        REQUESTS(row.provider_slug or "-", http_status).inc()
        OVERHEAD_SECONDS.observe(overhead_ms / 1000)
        self.ctx.access_log.line(
            request_id=self.request_id,
            provider_slug=row.provider_slug,
            status=http_status,
            ms=round(row.latency_ms, 3),
        )

    def bad_body(self, exc: msgspec.ValidationError | msgspec.DecodeError) -> Response:
        """400 naming the field msgspec complained about; the row records a bad request."""
        response = bad_body(exc)
        self.finish(400, failure(FailureClass.BAD_REQUEST, "invalid request body"))
        response.headers.update(self.headers())
        return response

    def fail(self, error: ErrorInfo, result: ProviderResult | None = None) -> Response:
        headers = self.headers(result)
        if error.retry_after_ms:  # the upstream's own delay, rounded up to whole seconds (RFC 9110)
            headers["retry-after"] = str(-(-error.retry_after_ms // 1000))
        self.finish(error.http_status, error, self.elapsed_ms())
        return error_response(error, headers)


def upstream_ms(timings: Timings, until_ns: int) -> float:
    if not timings.upstream_sent_ns or not until_ns:
        return 0.0
    return (until_ns - timings.upstream_sent_ns) / 1e6
