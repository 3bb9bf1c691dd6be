"""The mock upstream's Gemini routes: the wire format of the reference §5, its key checks and faults.

The mock is the Gemini upstream of the integration tests, so it is checked here against what the
Gemini adapter reads: its answers parse into valid OpenAI completions and streams.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from keyrail_cli.mock_formats.gemini import SIGNATURE, THOUGHT_TOKENS
from keyrail_cli.mock_upstream import DEFAULT_REPLY, FaultPlan, build_app
from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import AdapterCall
from keyrail_workers.adapters.gemini.stream import GeminiStreamTranslator
from tests.support.openai_schema import validate_component

KEY = "AIzaSyMOCKGEMINI-0123456789abcdefghij"
ADAPTER = ADAPTERS["gemini"]
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
PROMPT = {
    "systemInstruction": {"parts": [{"text": "Be terse."}]},  # 2 words
    "contents": [{"role": "user", "parts": [{"text": "Say hello to the mock"}]}],  # 5 words
}
TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "unit": {"type": "string", "enum": ["c", "f"]},
                    },
                    "required": ["city", "unit"],
                },
            }
        ]
    }
]
REPLY_WORDS = len(DEFAULT_REPLY.split())


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
    async with running(build_app(FaultPlan(), require_key=KEY)) as url:
        yield url


async def post(url: str, body: dict[str, Any], **headers: str) -> tuple[int, bytes]:
    headers = {"x-goog-api-key": KEY, **headers}
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as response:
        return response.status, await response.read()


def events(raw: bytes) -> list[dict[str, Any]]:
    assert raw.endswith(b"\r\n\r\n")  # CRLF framing, as Gemini sends
    return [json.loads(e.removeprefix(b"data: ")) for e in raw[:-4].split(b"\r\n\r\n")]


def adapter_call() -> AdapterCall:
    return AdapterCall(Operation.CHAT, Dialect.OPENAI, "gemini-2.5-flash", b"{}", False, "http://mock/v1beta")


async def test_generate_content_answers_the_reply_with_usage(base_url: str) -> None:
    status, raw = await post(base_url + GENERATE, PROMPT)

    assert status == 200
    body = json.loads(raw)
    [candidate] = body["candidates"]
    assert candidate["content"] == {"parts": [{"text": DEFAULT_REPLY}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    assert body["usageMetadata"] == {
        "promptTokenCount": 7,
        "candidatesTokenCount": REPLY_WORDS,
        "thoughtsTokenCount": THOUGHT_TOKENS,
        "totalTokenCount": 7 + REPLY_WORDS + THOUGHT_TOKENS,
    }
    assert body["modelVersion"] == "gemini-2.5-flash" and body["responseId"].startswith("mock-")
    parsed = ADAPTER.parse_response(adapter_call(), raw)
    validate_component("CreateChatCompletionResponse", json.loads(parsed.body))
    assert parsed.usage == Usage(
        prompt_tokens=7, completion_tokens=REPLY_WORDS + THOUGHT_TOKENS, reasoning_tokens=THOUGHT_TOKENS
    )


async def test_a_stream_is_one_event_per_word_and_ends_with_the_finish_reason(base_url: str) -> None:
    status, raw = await post(base_url + STREAM, PROMPT)

    assert status == 200
    chunks = events(raw)
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == DEFAULT_REPLY
    assert [("finishReason" in c["candidates"][0]) for c in chunks] == [False] * (REPLY_WORDS - 1) + [True]
    assert chunks[0]["usageMetadata"] == {"promptTokenCount": 7, "totalTokenCount": 7}
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == REPLY_WORDS
    reader = GeminiStreamTranslator("gemini-2.5-flash", client_wants_usage=False)
    for chunk in chunks:
        assert reader.feed("", json.dumps(chunk).encode()).error is None
    assert reader.finish() is None


async def test_declared_tools_get_a_signed_call_with_arguments_from_the_schema(base_url: str) -> None:
    status, raw = await post(base_url + GENERATE, {**PROMPT, "tools": TOOLS})

    assert status == 200
    [part] = json.loads(raw)["candidates"][0]["content"]["parts"]
    assert part == {
        "functionCall": {"name": "get_weather", "args": {"city": "mock", "unit": "c"}},
        "thoughtSignature": SIGNATURE,
    }


async def test_tool_mode_none_and_an_answered_call_get_text(base_url: str) -> None:
    off = {**PROMPT, "tools": TOOLS, "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}}
    call = {"functionCall": {"name": "get_weather", "args": {}}, "thoughtSignature": SIGNATURE}
    answered = {
        "contents": [
            *PROMPT["contents"],
            {"role": "model", "parts": [call]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 1}}}]},
        ],
        "tools": TOOLS,
    }

    for body in (off, answered):
        status, raw = await post(base_url + GENERATE, body)
        assert status == 200
        assert json.loads(raw)["candidates"][0]["content"]["parts"] == [{"text": DEFAULT_REPLY}]


async def test_a_replayed_call_without_its_signature_is_refused_like_gemini_3(base_url: str) -> None:
    body = {"contents": [*PROMPT["contents"], {"role": "model", "parts": [{"functionCall": {"name": "f"}}]}]}

    status, raw = await post(base_url + GENERATE, body)

    assert status == 400
    assert "thought_signature" in json.loads(raw)["error"]["message"]


async def test_a_streamed_call_is_one_event(base_url: str) -> None:
    _, raw = await post(base_url + STREAM, {**PROMPT, "tools": TOOLS})

    [chunk] = events(raw)
    assert chunk["candidates"][0]["finishReason"] == "STOP"
    assert "functionCall" in chunk["candidates"][0]["content"]["parts"][0]


@pytest.mark.parametrize(
    ("headers", "path", "status", "words"),
    [
        ({"x-goog-api-key": ""}, GENERATE, 403, "unregistered callers"),
        ({"x-goog-api-key": "AIzaSy-wrong"}, GENERATE, 400, "API key not valid"),
        ({}, GENERATE + "?key=" + KEY, 400, "refuses API keys in the URL"),
        ({}, STREAM.replace("?alt=sse", ""), 400, "alt=sse"),
    ],
)
async def test_keys_are_checked_in_the_header_only(
    base_url: str, headers: dict[str, str], path: str, status: int, words: str
) -> None:
    got, raw = await post(base_url + path, PROMPT, **headers)

    assert got == status
    error = json.loads(raw)["error"]
    assert words in error["message"] and "wrong" not in error["message"]  # never echoes a key


async def test_a_wrong_key_is_the_stored_credentials_fault_for_the_adapter(base_url: str) -> None:
    status, raw = await post(base_url + GENERATE, PROMPT, **{"x-goog-api-key": "AIzaSy-wrong"})

    assert ADAPTER.classify_error(status, {}, raw).failure_class is FailureClass.CREDENTIAL


@pytest.mark.parametrize(
    ("fault", "status", "failure_class"),
    [
        ("status=429;retry_after=7", 429, FailureClass.RATE_LIMIT),
        ("status=503", 503, FailureClass.OVERLOADED),
        ("status=500", 500, FailureClass.UPSTREAM_5XX),
        ("status=404", 404, FailureClass.MODEL_ACCESS),
        ("status=504", 504, FailureClass.TIMEOUT),
        ("status=400", 400, FailureClass.CALLER_ERROR),
    ],
)
async def test_status_faults_are_google_errors(
    base_url: str, fault: str, status: int, failure_class: FailureClass
) -> None:
    got, raw = await post(base_url + GENERATE, PROMPT, **{"x-mock-fault": fault})

    assert got == status
    error = ADAPTER.classify_error(got, {}, raw)
    assert error.failure_class is failure_class
    assert error.retry_after_s == (7.0 if status == 429 else 0.0)  # from RetryInfo, not a header


@pytest.mark.parametrize("path", [GENERATE, STREAM])
async def test_the_blocked_fault_is_a_blocked_prompt(base_url: str, path: str) -> None:
    status, raw = await post(base_url + path, {**PROMPT, "mock": {"blocked": "PROHIBITED_CONTENT"}})

    assert status == 200
    body = events(raw)[0] if path == STREAM else json.loads(raw)
    assert "candidates" not in body
    assert body["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    parsed = ADAPTER.parse_response(adapter_call(), json.dumps(body).encode())
    assert parsed.error is not None and parsed.error.failure_class is FailureClass.CONTENT_FILTER


async def test_drop_midstream_never_sends_the_finish_reason(base_url: str) -> None:
    headers = {"x-goog-api-key": KEY, "x-mock-fault": "drop=midstream"}
    received = b""
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + STREAM, json=PROMPT, headers=headers) as r,
    ):
        with contextlib.suppress(aiohttp.ClientPayloadError):
            async for data in r.content.iter_any():
                received += data

    chunks = events(received)
    assert len(chunks) == 1 and "finishReason" not in chunks[0]["candidates"][0]


async def test_bad_requests_are_invalid_argument(base_url: str) -> None:
    bodies: list[dict[str, Any]] = [{"contents": []}, {"contents": "nope"}]
    for body in bodies:
        status, raw = await post(base_url + GENERATE, body)
        assert status == 400 and json.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"
    status, raw = await post(base_url + GENERATE, {**PROMPT, "mock": {"nonsense": 1}})
    assert status == 400 and "Invalid mock fault" in json.loads(raw)["error"]["message"]


async def test_without_require_key_any_header_key_is_accepted_but_never_one_in_the_url() -> None:
    async with running(build_app(FaultPlan(reply="custom words"))) as url:
        status, raw = await post(url + GENERATE, PROMPT, **{"x-goog-api-key": "anything"})
        assert status == 200 and json.loads(raw)["candidates"][0]["content"]["parts"] == [
            {"text": "custom words"}
        ]
        status, _ = await post(url + GENERATE + "?key=anything", PROMPT)
        assert status == 400
