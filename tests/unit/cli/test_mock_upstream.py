"""The mock upstream speaks OpenAI well enough for the official SDK, and its faults behave as documented."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web

from keyrail_cli.mock_upstream import (
    DEFAULT_REPLY,
    FaultPlan,
    add_arguments,
    build_app,
)
from tests.support.openai_schema import validate_component

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are a terse assistant."},  # 5 words
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Say hello  to\tthe mock"},  # 5 words, odd whitespace on purpose
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ],
    },
]
PROMPT_TOKENS = 10
REPLY_WORDS = DEFAULT_REPLY.split()  # 6 words


@contextlib.asynccontextmanager
async def running(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def base_url() -> AsyncIterator[str]:
    async with running(build_app(FaultPlan())) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0)
    yield sdk
    await sdk.close()


async def raw_post(url: str, body: bytes | dict[str, Any], **headers: str) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with aiohttp.ClientSession() as session, session.post(url, data=data, headers=headers) as response:
        return response.status, await response.read()


def sse_payloads(raw: bytes) -> list[str]:
    """Split an SSE body into its ``data:`` payloads, checking the framing on the way."""
    assert raw.endswith(b"\n\n")
    events = raw[:-2].split(b"\n\n")
    assert all(event.startswith(b"data: ") for event in events), events
    return [event[len(b"data: ") :].decode() for event in events]


async def test_non_streaming_completion_is_valid_openai(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    payload = raw.http_response.json()
    validate_component("CreateChatCompletionResponse", payload)
    assert raw.headers["x-request-id"] == payload["id"]
    assert payload["id"].startswith("chatcmpl-mock-")

    completion = raw.parse()
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == PROMPT_TOKENS
    assert completion.usage.completion_tokens == len(REPLY_WORDS) == 6
    assert completion.usage.total_tokens == PROMPT_TOKENS + 6


async def test_streaming_with_usage_through_the_sdk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-5-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == DEFAULT_REPLY
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (PROMPT_TOKENS, 6, 16)


async def test_streaming_wire_format_validates_chunk_by_chunk(base_url: str) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    status, raw = await raw_post(f"{base_url}/v1/chat/completions", body)
    assert status == 200
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(payload) for payload in payloads[:-1]]
    for chunk in chunks:
        validate_component("CreateChatCompletionStreamResponse", chunk)
    # role chunk, one chunk per word, stop chunk, usage chunk
    assert len(chunks) == 1 + len(REPLY_WORDS) + 2
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    words = [chunk["choices"][0]["delta"]["content"] for chunk in chunks[1:-2]]
    assert words == [REPLY_WORDS[0], *(" " + word for word in REPLY_WORDS[1:])]
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 16
    assert {chunk["model"] for chunk in chunks} == {"gpt-4o-mini"}
    assert {chunk["system_fingerprint"] for chunk in chunks} == {"fp_mock"}


async def test_stream_without_include_usage_has_no_usage_field(base_url: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    status, raw = await raw_post(f"{base_url}/chat/completions", body)  # the un-prefixed alias
    assert status == 200
    chunks = [json.loads(payload) for payload in sse_payloads(raw)[:-1]]
    assert len(chunks) == 1 + len(REPLY_WORDS) + 1
    assert all("usage" not in chunk for chunk in chunks)
    for chunk in chunks:
        validate_component("CreateChatCompletionStreamResponse", chunk)


async def test_status_fault_via_extra_body(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_body={"mock": {"status": 503}}
        )
    assert caught.value.status_code == 503
    body = caught.value.response.json()
    validate_component("ErrorResponse", body)
    assert body["error"]["type"] == "server_error"


async def test_a_status_fault_with_times_hits_only_the_first_requests_of_its_key(
    client: openai.AsyncOpenAI,
) -> None:
    fault = {"mock": {"status": 429, "times": 2, "key": "recovers"}}
    for _ in range(2):
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_body=fault)
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_body=fault)
    assert answer.choices[0].message.content == DEFAULT_REPLY
    other_key = {"mock": {"status": 429, "times": 1, "key": "another"}}
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_body=other_key)


async def test_status_fault_on_a_stream_is_a_plain_json_error(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_body={"mock": {"status": 500}}
        )
    assert caught.value.status_code == 500
    assert caught.value.response.headers["content-type"] == "application/json"


async def test_fault_header_with_delay(client: openai.AsyncOpenAI) -> None:
    started = time.perf_counter()
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-fault": "status=429, delay_ms=40"}
        )
    assert time.perf_counter() - started >= 0.039
    body = caught.value.response.json()
    validate_component("ErrorResponse", body)
    assert body["error"]["code"] == "rate_limit_exceeded"


async def test_defaults_apply_and_per_request_values_override_them() -> None:
    async with running(build_app(FaultPlan(status=503, reply="from the defaults"))) as url:
        status, _ = await raw_post(f"{url}/v1/chat/completions", {"model": "m", "messages": MESSAGES})
        assert status == 503
        sdk = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        healed = await sdk.chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"x-mock-fault": "status=0"}
        )
        assert healed.choices[0].message.content == "from the defaults"
        # the body wins over the header, and a reply override changes the token count
        custom = await sdk.chat.completions.create(
            model="m",
            messages=MESSAGES,
            extra_headers={"x-mock-fault": "status=502"},
            extra_body={"mock": {"status": 0, "reply": "three short words"}},
        )
        assert custom.choices[0].message.content == "three short words"
        assert custom.usage is not None and custom.usage.completion_tokens == 3
        await sdk.close()


async def test_require_key_rejects_wrong_and_missing_keys() -> None:
    async with running(build_app(FaultPlan(), require_key="sk-right")) as url:
        wrong = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-wrong-secret-1234", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            await wrong.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        await wrong.close()
        assert caught.value.status_code == 401
        assert "sk-wrong" not in caught.value.response.text and "1234" not in caught.value.response.text
        body = caught.value.response.json()
        validate_component("ErrorResponse", body)
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["code"] == "invalid_api_key"

        status, raw = await raw_post(f"{url}/v1/chat/completions", {"model": "m", "messages": MESSAGES})
        assert status == 401
        validate_component("ErrorResponse", json.loads(raw))

        right = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-right", max_retries=0)
        completion = await right.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert completion.choices[0].message.content == DEFAULT_REPLY
        assert [model.id async for model in right.models.list()] == ["gpt-4o-mini", "gpt-4o", "gpt-5-mini"]
        await right.close()


async def test_drop_midstream_breaks_the_sdk_stream(
    client: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_body={"mock": {"drop": "midstream"}}
    )
    received: list[str | None] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", REPLY_WORDS[0]]  # the first two events arrived, then the connection died
    assert not [record for record in caplog.records if record.name.startswith("aiohttp")]


async def test_drop_before_closes_without_a_response(
    client: openai.AsyncOpenAI, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-mock-fault": "drop=before"}
        )
    assert not [record for record in caplog.records if record.name.startswith("aiohttp")]
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/healthz") as response:
        assert (response.status, await response.text()) == (200, "ok")


async def test_chunk_delay_slows_the_stream(client: openai.AsyncOpenAI) -> None:
    delay = 0.025
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_body={"mock": {"chunk_delay_ms": 25}}
    )
    arrivals = [time.perf_counter() async for _ in stream]
    elapsed = time.perf_counter() - started
    events = 1 + len(REPLY_WORDS) + 1 + 1  # role, words, stop, [DONE]
    assert len(arrivals) == events - 1
    assert elapsed >= (events - 1) * delay * 0.95
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) * delay * 0.95  # really spread out
    assert elapsed < 2.0


@pytest.mark.parametrize(
    ("body", "headers", "needle"),
    [
        (b"{not json", {}, "Invalid request body"),
        (b'{"model": "gpt-4o-mini"}', {}, "messages"),
        (b'{"model": "gpt-4o-mini", "messages": []}', {}, "messages"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', {"x-mock-fault": "status=abc"}, "mock fault"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "mock": {"stauts": 503}}', {}, "stauts"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "mock": {"drop": "sideways"}}', {}, "drop"),
    ],
)
async def test_bad_requests_get_openai_shaped_400s(
    base_url: str, body: bytes, headers: dict[str, str], needle: str
) -> None:
    status, raw = await raw_post(f"{base_url}/v1/chat/completions", body, **headers)
    assert status == 400
    payload = json.loads(raw)
    validate_component("ErrorResponse", payload)
    assert payload["error"]["type"] == "invalid_request_error"
    assert needle in payload["error"]["message"]


async def test_models_and_health(client: openai.AsyncOpenAI, base_url: str) -> None:
    assert [model.id async for model in client.models.list()] == ["gpt-4o-mini", "gpt-4o", "gpt-5-mini"]
    async with aiohttp.ClientSession() as session:
        for path in ("/v1/models", "/models"):
            async with session.get(base_url + path) as response:
                validate_component("ListModelsResponse", await response.json())
        async with session.get(f"{base_url}/healthz") as response:
            assert (response.status, await response.text()) == (200, "ok")


def test_cli_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = parser.parse_args([])
    assert (defaults.host, defaults.port, defaults.status, defaults.drop) == ("127.0.0.1", 9900, 0, "")
    assert defaults.require_key is None
    args = parser.parse_args(
        "--status 503 --delay-ms 5 --drop midstream --chunk-delay-ms 7 --require-key k".split()
    )
    assert (args.status, args.delay_ms, args.drop, args.chunk_delay_ms, args.require_key) == (
        503,
        5,
        "midstream",
        7,
        "k",
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--drop", "sideways"])
    with pytest.raises(ValueError):
        FaultPlan(status=200)
