"""`AttemptRecorder`: an attempt's result, its stream end frame and its activity row, with the cost once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from keyrail_common import cost
from keyrail_common.attempts import AttemptRecorder, usage_source
from keyrail_common.failures import FailureClass, failure
from keyrail_common.messages import (
    ActivityRow,
    Prices,
    ProviderCall,
    ProviderResult,
    StreamEnd,
    Target,
    Usage,
    activity_decoder,
    encode,
)

PRICES = Prices(input=2.0, output=8.0, cached_input=0.5, version="catalog-2026-11")
USAGE = Usage(prompt_tokens=1_000, completion_tokens=200, cached_tokens=400, reasoning_tokens=50)
# 600 uncached x $2 + 400 cached x $0.5 + 200 output x $8, per million.
COST = Decimal("0.003")


def call(**changes: Any) -> ProviderCall:
    target = Target(
        integration_id="int_1",
        provider="openai",
        provider_slug="openai-prod-chat",
        adapter="openai",
        model="gpt-4.1",
        catalog_id="openai/gpt-4.1",
        base_url="https://api.openai.com/v1",
        credential_ref="integrations/org_1/openai-prod-chat",
        credential_version=3,
        prices=PRICES,
    )
    base = ProviderCall(
        request_id="req_1",
        org_id="org_1",
        project_id="proj_a",
        attempt=3,
        fallback_position=1,
        target=target,
        body=b"{}",
        received_ns=1_000_000_000,
        routed_ns=1_500_000_000,
        deadline_ns=0,
        attempt_deadline_ns=0,
        tags=["batch", "classifier"],
        stream=True,
    )
    return msgspec.structs.replace(base, **changes)


def test_the_cost_follows_the_usage_and_the_targets_prices() -> None:
    attempt = AttemptRecorder(call())
    assert attempt.usage is None and attempt.cost_usd is None  # no usage yet: not known

    attempt.usage = USAGE

    assert attempt.usage == USAGE
    assert attempt.cost_usd == COST
    attempt.usage = None
    assert attempt.cost_usd is None


def test_an_answer_without_usage_is_unpriced_and_a_failure_without_it_billed_nothing() -> None:
    answered = AttemptRecorder(call())
    answered.succeed(b"{}")
    failed = AttemptRecorder(call())
    failed.fail(failure(FailureClass.RATE_LIMIT, "slow down", upstream_status=429))

    assert (answered.row().cost_usd, answered.row().cost_status) == (None, "unpriced")
    assert (failed.row().cost_usd, failed.row().cost_status) == (Decimal(0), "priced")


def test_a_target_without_prices_gives_an_unpriced_row_with_no_cost() -> None:
    attempt = AttemptRecorder(call(target=msgspec.structs.replace(call().target, prices=Prices())))
    attempt.usage = USAGE

    result = attempt.succeed(b"{}")
    row = attempt.row()

    assert result.cost_usd is None and row.cost_usd is None and row.cost_status == "unpriced"
    assert activity_decoder.decode(encode(row)).cost_usd is None


def test_the_cost_is_computed_once_and_the_same_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    computed: list[Usage] = []
    price = cost.attempt_cost

    def counting(prices: Prices, usage: Usage) -> Decimal | None:
        computed.append(usage)
        return price(prices, usage)

    monkeypatch.setattr(cost, "attempt_cost", counting)
    attempt = AttemptRecorder(call())
    attempt.usage = USAGE

    result = attempt.succeed(b'{"id": "x"}')
    end = attempt.stream_end(12, None)
    row = attempt.row()

    assert computed == [USAGE]
    assert result.cost_usd == end.cost_usd == row.cost_usd == COST
    assert result.price_version == end.price_version == row.price_version == "catalog-2026-11"
    assert row.cost_status == "priced"
    assert activity_decoder.decode(encode(row)).cost_usd == COST  # exact through the bus


def test_succeed_gives_the_body_usage_cost_and_the_target() -> None:
    attempt = AttemptRecorder(call())
    attempt.usage = USAGE

    result = attempt.succeed(b'{"id": "chatcmpl-1"}')

    assert isinstance(result, ProviderResult)
    assert (result.ok, result.http_status, result.error, result.streaming) == (True, 200, None, False)
    assert result.body == b'{"id": "chatcmpl-1"}'
    assert (result.provider, result.provider_slug, result.model) == ("openai", "openai-prod-chat", "gpt-4.1")
    assert result.attempts == 3
    assert result.usage == USAGE
    assert result.cost_usd == COST
    assert (result.timings.received_ns, result.timings.routed_ns) == (1_000_000_000, 1_500_000_000)
    assert result.timings.upstream_sent_ns > 0


def test_succeed_streaming_has_no_body() -> None:
    result = AttemptRecorder(call()).succeed(streaming=True)

    assert result.ok and result.streaming and result.body == b""


def test_fail_gives_the_error_and_its_status() -> None:
    attempt = AttemptRecorder(call())
    error = failure(FailureClass.RATE_LIMIT, "slow down", upstream_status=429, retry_after_s=2.0)

    result = attempt.fail(error)

    assert (result.ok, result.http_status, result.error) == (False, 429, error)
    assert (result.provider_slug, result.model, result.attempts) == ("openai-prod-chat", "gpt-4.1", 3)
    assert result.cost_usd == 0 and result.usage is None
    assert (attempt.error, attempt.http_status) == (error, 429)


def test_the_row_of_a_successful_attempt() -> None:
    attempt = AttemptRecorder(call())
    attempt.usage = USAGE
    attempt.started, attempt.first_content = 100.0, 100.25  # perf_counter seconds

    attempt.succeed(b"{}")
    row = attempt.row()

    assert isinstance(row, ActivityRow)
    assert (row.request_id, row.kind, row.attempt, row.fallback_position) == ("req_1", "attempt", 3, 1)
    assert (row.org_id, row.project_id) == ("org_1", "proj_a")
    assert (row.provider, row.provider_slug, row.model) == ("openai", "openai-prod-chat", "gpt-4.1")
    assert (row.status, row.http_status, row.error_class, row.error_message) == ("ok", 200, "", "")
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens, row.reasoning_tokens) == (
        1_000,
        200,
        400,
        50,
    )
    assert row.cost_usd == COST
    assert row.tags == ["batch", "classifier"] and row.stream is True
    assert row.credential_version == 3
    assert row.ttft_ms == pytest.approx(250.0)
    assert row.latency_ms >= row.ttft_ms
    assert row.ts_ms == attempt.timings.upstream_sent_ns // 1_000_000


def test_the_row_of_a_failed_attempt_carries_the_class_and_the_message() -> None:
    attempt = AttemptRecorder(call(stream=False, fallback_position=0, attempt=1))
    error = failure(FailureClass.CREDENTIAL, "Upstream 'openai-prod-chat' rejected the stored credential")

    attempt.fail(error)
    row = attempt.row()

    assert (row.status, row.http_status) == ("error", 502)
    assert row.error_class == "credential"
    assert row.error_message == "Upstream 'openai-prod-chat' rejected the stored credential"
    assert (row.attempt, row.fallback_position, row.stream) == (1, 0, False)
    assert (row.prompt_tokens, row.completion_tokens, row.cost_usd) == (0, 0, Decimal(0))
    assert row.ttft_ms == 0.0  # no content ever came


def test_the_row_survives_the_wire_with_a_plain_string_class() -> None:
    attempt = AttemptRecorder(call())
    attempt.fail(failure(FailureClass.STREAM_CUT, "cut"))

    decoded = activity_decoder.decode(encode(attempt.row()))

    assert decoded.error_class == "stream_cut"
    assert decoded.status == "error"


def test_mark_content_keeps_the_first_time() -> None:
    attempt = AttemptRecorder(call())

    attempt.mark_content()
    first = attempt.first_content
    attempt.mark_content()

    assert first > 0 and attempt.first_content == first


def test_stream_end_of_a_complete_stream() -> None:
    attempt = AttemptRecorder(call())
    attempt.usage = USAGE

    end = attempt.stream_end(11, None)

    assert isinstance(end, StreamEnd)
    assert (end.chunks, end.attempts, end.error) == (11, 3, None)
    assert (end.provider, end.provider_slug, end.model) == ("openai", "openai-prod-chat", "gpt-4.1")
    assert end.usage == USAGE and end.cost_usd == COST
    assert end.timings.done_ns >= end.timings.upstream_sent_ns > 0
    assert attempt.row().status == "ok"


def test_stream_end_with_an_error_marks_the_attempt_failed() -> None:
    attempt = AttemptRecorder(call())
    attempt.usage = Usage(prompt_tokens=10, completion_tokens=3)
    cut = failure(FailureClass.STREAM_CUT, "Upstream 'openai-prod-chat' stream broke: UpstreamTimeout")

    end = attempt.stream_end(4, cut)
    row = attempt.row()

    assert end.error == cut and end.chunks == 4
    assert end.usage == Usage(prompt_tokens=10, completion_tokens=3)  # what was used is still billed
    assert (row.status, row.http_status, row.error_class) == ("error", 502, "stream_cut")
    assert row.cost_usd == Decimal("0.000044")


@pytest.mark.parametrize(
    ("usage", "answered", "source"),
    [(Usage(prompt_tokens=1), True, "reported"), (None, True, "missing"), (None, False, "")],
)
def test_usage_source_never_passes_a_missing_usage_off_as_zero(
    usage: Usage | None, answered: bool, source: str
) -> None:
    assert usage_source(usage, answered) == source
