"""One conformance suite over every adapter in `ADAPTERS`, fed from the provider fixtures
(contracts/providers/fixtures) and each adapter's cases (cases/<adapter>.json):

- request translation: an OpenAI client body becomes a request to the right URL, with the
  credential in the format's auth header (never in the URL) and a JSON body;
- response translation: a fixture answer becomes a valid OpenAI `chat.completion` (or passes
  through byte for byte, for OpenAI-format upstreams) with the expected text, finish reason, tool
  calls and normalised usage (Anthropic's `input_tokens` exclude cache reads and writes, so the
  prompt adds them; OpenAI's and Gemini's include them);
- stream translation: a fixture stream becomes valid OpenAI chunks adding up to the same, with
  its usage, ends at its terminal event, and the same stream cut before that event is a
  `stream_cut`; an in-band error ends it with its failure class;
- error classification: each error fixture gets its failure class, code and retry delay.

Adapter-specific behaviour (parameter mapping, quirks, retry headers) stays in
tests/unit/workers/adapters/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import Adapter, AdapterCall, StreamStep, UpstreamRequest
from tests.support.adapters import feed, sse_pairs
from tests.support.contracts import FIXTURES
from tests.support.openai_schema import validate_component
from tests.unit.workers.conformance.cases import AdapterCases, Answer, load_cases

CASES = load_cases()
STREAM_REQUEST = FIXTURES / "openai" / "chat_request.json"


def _cases(kind: str) -> list[Any]:
    return [
        pytest.param(adapter, case, id=f"{adapter}:{case.fixture}")
        for adapter, cases in sorted(CASES.items())
        for case in getattr(cases, kind)
    ]


def adapter_call(cases: AdapterCases, body: bytes, stream: bool) -> AdapterCall:
    return AdapterCall(
        operation=Operation.CHAT,
        dialect=Dialect.OPENAI,
        model=cases.call.model,
        body=body,
        stream=stream,
        base_url=cases.call.base_url,
    )


def built(adapter: Adapter, call: AdapterCall, cases: AdapterCases) -> UpstreamRequest:
    request = adapter.build_request(call, cases.call.credential)
    assert isinstance(request, UpstreamRequest), request
    return request


def stream_request(cases: AdapterCases) -> tuple[AdapterCall, UpstreamRequest]:
    """A streaming call asking for usage, and the request the adapter built for it."""
    body = {
        **json.loads(STREAM_REQUEST.read_bytes()),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    call = adapter_call(cases, json.dumps(body).encode(), stream=True)
    return call, built(ADAPTERS[cases.adapter], call, cases)


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


# --- the cases cover the adapters and their fixtures -----------------------------------------------


def test_every_adapter_has_cases_and_every_case_an_adapter() -> None:
    assert set(CASES) == set(ADAPTERS)


@pytest.mark.parametrize("adapter", sorted(CASES))
def test_every_response_stream_and_error_fixture_has_a_case(adapter: str) -> None:
    cases = CASES[adapter]
    covered = {c.fixture for c in cases.responses} | {c.fixture for c in cases.streams}
    covered |= {c.fixture for c in cases.errors}
    fixtures = {
        f"{d}/{p.name}"
        for d in cases.fixture_dirs
        for p in (FIXTURES / d).iterdir()
        if p.name.endswith((".sse", "_response.json")) or p.name.startswith("error")
    } - {
        f"{d}/{name}"
        for d in cases.fixture_dirs
        for name in ("models_list_response.json", "embeddings_response.json")
    }
    assert fixtures <= covered, (
        f"fixtures without a case in cases/{adapter}.json: {sorted(fixtures - covered)}"
    )
    assert all((FIXTURES / name).is_file() for name in covered)


# --- request translation ---------------------------------------------------------------------------


@pytest.mark.parametrize(("adapter", "case"), _cases("requests"))
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_client_request_goes_to_the_formats_url_with_the_credential_in_its_header(
    adapter: str, case: Any, stream: bool
) -> None:
    cases = CASES[adapter]
    body = {**json.loads((FIXTURES / case.fixture).read_bytes()), "stream": stream}
    call = adapter_call(cases, json.dumps(body).encode(), stream)

    request = built(ADAPTERS[adapter], call, cases)

    key = str(cases.call.credential["api_key"])
    assert request.method == "POST"
    assert request.url == (case.stream_url if stream else case.url)
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers[cases.call.auth_header.lower()] == cases.call.auth_prefix + key
    assert key not in request.url
    assert headers["content-type"] == "application/json"
    assert isinstance(json.loads(request.body), dict)


# --- response translation --------------------------------------------------------------------------


def check_answer(answer: Answer, content: str | None, finish: str | None, tools: list[str]) -> None:
    assert content == answer.content
    assert finish == answer.finish_reason
    assert tools == answer.tool_calls


@pytest.mark.parametrize(("adapter", "case"), _cases("responses"))
def test_a_fixture_answer_is_a_valid_openai_completion_with_normalised_usage(adapter: str, case: Any) -> None:
    cases = CASES[adapter]
    call = adapter_call(cases, STREAM_REQUEST.read_bytes(), stream=False)

    raw = (FIXTURES / case.fixture).read_bytes()
    parsed = ADAPTERS[adapter].parse_response(call, raw)

    if case.error is not None:
        assert parsed.error is not None and parsed.error.failure_class is case.error
        assert parsed.body == b""
        return
    assert parsed.error is None
    completion = json.loads(parsed.body)
    if parsed.body != raw:  # translated: OpenAI's schema; passed through, the upstream's own bytes
        validate_component("CreateChatCompletionResponse", completion)
    message = completion["choices"][0]["message"]
    tools = [c["function"]["name"] for c in message.get("tool_calls") or []]
    check_answer(case.answer, message.get("content"), completion["choices"][0]["finish_reason"], tools)
    assert parsed.usage == case.answer.usage
    if parsed.usage is not None:
        usage = completion["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
            parsed.usage.prompt_tokens,
            parsed.usage.completion_tokens,
        )


# --- stream translation ----------------------------------------------------------------------------


def added_up(steps: list[StreamStep]) -> tuple[str | None, str | None, list[str], list[dict[str, Any]]]:
    """(text, last finish reason, tool call names, chunks) of what the client received."""
    chunks = [json.loads(frame) for step in steps for frame in step.frames]
    text = "".join(choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"])
    finishes = [
        choice["finish_reason"]
        for chunk in chunks
        for choice in chunk["choices"]
        if choice.get("finish_reason")
    ]
    tools = [
        call["function"]["name"]
        for chunk in chunks
        for choice in chunk["choices"]
        for call in choice["delta"].get("tool_calls") or []
        if call.get("function", {}).get("name")
    ]
    return text or None, finishes[-1] if finishes else None, tools, chunks


@pytest.mark.parametrize(("adapter", "case"), _cases("streams"))
async def test_a_fixture_stream_becomes_valid_openai_chunks_with_its_usage(adapter: str, case: Any) -> None:
    cases = CASES[adapter]
    call, request = stream_request(cases)
    translator = ADAPTERS[adapter].stream_translator(call, request)

    steps = await feed((FIXTURES / case.fixture).read_bytes(), translator)

    text, finish, tools, chunks = added_up(steps)
    for chunk in chunks:
        validate_component("CreateChatCompletionStreamResponse", chunk)
    if case.error is not None:
        assert steps[-1].error is not None and steps[-1].error.failure_class is case.error
        assert any(step.content for step in steps) is case.error_after_content
        return
    assert all(step.error is None for step in steps)
    assert translator.finish() is None  # the terminal event came
    check_answer(case.answer, text, finish, tools)
    assert translator.usage == case.answer.usage
    if case.answer.usage is not None:  # asked for: the last chunk is the usage chunk
        assert (
            chunks[-1]["choices"] == []
            and chunks[-1]["usage"]["prompt_tokens"] == case.answer.usage.prompt_tokens
        )


@pytest.mark.parametrize(("adapter", "case"), [p for p in _cases("streams") if p.values[1].error is None])
async def test_the_same_stream_cut_before_its_terminal_event_is_a_stream_cut(adapter: str, case: Any) -> None:
    cases = CASES[adapter]
    call, request = stream_request(cases)
    events = await sse_pairs((FIXTURES / case.fixture).read_bytes())
    complete = ADAPTERS[adapter].stream_translator(call, request)
    # The terminal event: the one marked done, or the last (a Gemini stream ends with its finish).
    done = [i for i, (event, data) in enumerate(events) if complete.feed(event, data).done]
    terminal = done[0] if done else len(events) - 1
    cut = ADAPTERS[adapter].stream_translator(call, request)
    for event, data in events[:terminal]:  # every event before the terminal one
        assert cut.feed(event, data).done is False

    failure = cut.finish()

    assert failure is not None and failure.failure_class is FailureClass.STREAM_CUT


# --- error classification --------------------------------------------------------------------------


@pytest.mark.parametrize(("adapter", "case"), _cases("errors"))
def test_an_error_fixture_is_classified_into_the_failure_vocabulary(adapter: str, case: Any) -> None:
    raw = (FIXTURES / case.fixture).read_bytes()

    error = ADAPTERS[adapter].classify_error(case.status, {}, raw)

    assert error.failure_class is case.failure_class
    assert (error.upstream_status, error.provider_code) == (case.status, case.provider_code)
    assert error.retry_after_s == pytest.approx(case.retry_after_s)
    assert error.message in set(strings_in(json.loads(raw)))  # the upstream's own words, whole


def test_usage_goldens_state_how_each_format_counts_cached_tokens() -> None:
    def golden(adapter: str, fixture: str) -> tuple[Usage, dict[str, Any]]:
        case = next(c for c in CASES[adapter].responses if c.fixture == fixture)
        assert case.answer is not None and case.answer.usage is not None
        return case.answer.usage, json.loads((FIXTURES / fixture).read_bytes())

    # Anthropic's input_tokens exclude cache reads and writes: the prompt adds them back.
    usage, body = golden("anthropic", "anthropic/messages_response.json")
    wire = body["usage"]
    assert wire["cache_read_input_tokens"] > 0
    assert usage.prompt_tokens == (
        wire["input_tokens"] + wire["cache_read_input_tokens"] + wire["cache_creation_input_tokens"]
    )
    assert (usage.cached_tokens, usage.cache_write_tokens) == (
        wire["cache_read_input_tokens"],
        wire["cache_creation_input_tokens"],
    )
    # OpenAI's prompt_tokens and Gemini's promptTokenCount already include the cached tokens.
    usage, body = golden("openai", "openai/chat_response.json")
    assert usage.prompt_tokens == body["usage"]["prompt_tokens"]
    assert usage.cached_tokens == body["usage"]["prompt_tokens_details"]["cached_tokens"]
    usage, body = golden("gemini", "gemini/generate_content_response.json")
    assert usage.prompt_tokens == body["usageMetadata"]["promptTokenCount"]
    assert usage.cached_tokens == body["usageMetadata"].get("cachedContentTokenCount", 0)
