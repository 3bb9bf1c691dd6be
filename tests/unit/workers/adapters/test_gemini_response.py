"""The Gemini adapter's `parse_response`: GenerateContentResponse fixtures → OpenAI `chat.completion`.

Golden answers with the usage semantics of the reference §1.2 (thoughts are completion tokens
and reasoning tokens; the prompt includes cached and tool-use prompt tokens), finish reasons
per §1.1, and a blocked prompt as a content-filter failure, never an empty 200.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation
from keyrail_workers.adapters import ADAPTERS
from keyrail_workers.adapters.base import AdapterCall, ParsedResponse
from keyrail_workers.adapters.gemini.response import parse_chat_response
from keyrail_workers.upstream_errors import upstream_failure
from tests.support.contracts import FIXTURES
from tests.support.openai_schema import validate_component

ADAPTER = ADAPTERS["gemini"]
GEMINI = FIXTURES / "gemini"
CREATED = 1764201600
CALL = AdapterCall(
    operation=Operation.CHAT,
    dialect=Dialect.OPENAI,
    model="gemini-2.5-flash",
    body=b"{}",
    stream=False,
    base_url="https://generativelanguage.googleapis.com/v1beta",
)
SIGNATURE = "CtUCAVSoXO7example+thought+signature+FIXTURE+ONLY+base64=="


def parse(body: bytes | dict[str, Any]) -> ParsedResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_chat_response(raw, "gemini-2.5-flash", CREATED)


def completion(body: bytes | dict[str, Any]) -> dict[str, Any]:
    parsed = parse(body)
    assert parsed.error is None
    answer: dict[str, Any] = json.loads(parsed.body)
    validate_component("CreateChatCompletionResponse", answer)
    return answer


def candidate(parts: list[dict[str, Any]], finish: str | None = "STOP", index: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
    if finish is not None:
        body["finishReason"] = finish
    return body


def test_the_text_fixture_is_this_chat_completion() -> None:
    answer = completion((GEMINI / "generate_content_response.json").read_bytes())

    assert answer == {
        "id": "x2RnaPOaKa6Nz7IPpJ2E-Ac",
        "object": "chat.completion",
        "created": CREATED,
        "model": "gemini-2.5-flash",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "The image is a single transparent pixel, so it shows nothing recognisable.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 271,
            "completion_tokens": 130,  # 16 candidates + 114 thoughts
            "total_tokens": 401,  # Gemini's own totalTokenCount
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 114},
        },
    }


def test_the_text_fixtures_usage_is_normalised() -> None:
    parsed = parse((GEMINI / "generate_content_response.json").read_bytes())

    assert parsed.usage == Usage(prompt_tokens=271, completion_tokens=130, reasoning_tokens=114)


def test_the_function_call_fixture_is_a_tool_call_carrying_its_signature() -> None:
    parsed = parse((GEMINI / "function_call_response.json").read_bytes())
    answer = completion((GEMINI / "function_call_response.json").read_bytes())

    [choice] = answer["choices"]
    assert choice["finish_reason"] == "tool_calls"  # Gemini said STOP
    assert choice["message"]["content"] is None
    [tool_call] = choice["message"]["tool_calls"]
    assert tool_call["type"] == "function"
    assert tool_call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'}
    assert tool_call["id"].startswith("call_") and tool_call["id"].endswith("~" + SIGNATURE)
    assert parsed.usage == Usage(prompt_tokens=58, completion_tokens=113, reasoning_tokens=93)
    assert answer["usage"]["total_tokens"] == 171


def test_tool_call_ids_are_stable_and_distinct() -> None:
    raw = (GEMINI / "function_call_response.json").read_bytes()
    again = completion(raw)["choices"][0]["message"]["tool_calls"][0]["id"]
    other = json.loads(raw)
    other["responseId"] = "another-response"

    assert completion(raw)["choices"][0]["message"]["tool_calls"][0]["id"] == again
    assert completion(other)["choices"][0]["message"]["tool_calls"][0]["id"] != again


def test_parallel_calls_get_their_own_ids_and_text_beside_them_is_content() -> None:
    body = {
        "candidates": [
            candidate(
                [
                    {"text": "Checking both."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}},
                ]
            )
        ],
        "responseId": "r1",
    }

    message = completion(body)["choices"][0]["message"]

    assert message["content"] == "Checking both."
    ids = [c["id"] for c in message["tool_calls"]]
    assert len(set(ids)) == 2 and all("~" not in i for i in ids)  # no signature: a plain id
    assert [c["function"]["arguments"] for c in message["tool_calls"]] == [
        '{"city":"Paris"}',
        '{"city":"Tokyo"}',
    ]


def test_the_blocked_prompt_fixture_is_a_content_filter_failure_naming_the_reason() -> None:
    parsed = parse((GEMINI / "blocked_prompt_response.json").read_bytes())

    assert parsed.body == b""
    assert parsed.error is not None
    assert parsed.error.failure_class is FailureClass.CONTENT_FILTER
    assert parsed.error.provider_code == "SAFETY"
    assert "blockReason SAFETY" in parsed.error.message
    assert parsed.usage == Usage(prompt_tokens=12)  # what Gemini counted, for the activity row
    client_error = upstream_failure("gemini-prod", parsed.error, [])
    assert (client_error.http_status, client_error.error_class) == (400, FailureClass.CONTENT_FILTER)
    assert "content filter blocked the prompt" in client_error.message and "SAFETY" in client_error.message


def test_a_block_reason_message_is_kept() -> None:
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "blockReasonMessage": "policy 7"}}

    error = parse(body).error

    assert error is not None and error.failure_class is FailureClass.CONTENT_FILTER
    assert error.message.endswith("(promptFeedback.blockReason PROHIBITED_CONTENT): policy 7")


@pytest.mark.parametrize(
    "body", [{}, {"candidates": []}, {"promptFeedback": {}}], ids=["empty", "none", "no-reason"]
)
def test_no_candidates_without_a_block_reason_is_a_broken_answer(body: dict[str, Any]) -> None:
    error = parse(body).error

    assert error is not None and error.failure_class is FailureClass.UPSTREAM_5XX


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"candidates": "x"}'])
def test_an_undecodable_answer_is_a_failure(raw: bytes) -> None:
    parsed = parse(raw)

    assert parsed.error is not None and parsed.error.failure_class is FailureClass.UPSTREAM_5XX
    assert parsed.usage is None


FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
        ],
        "content_filter",
    ),
    **dict.fromkeys(
        [
            "LANGUAGE",
            "OTHER",
            "IMAGE_OTHER",
            "NO_IMAGE",
            "FINISH_REASON_UNSPECIFIED",
            "MALFORMED_FUNCTION_CALL",
            "UNEXPECTED_TOOL_CALL",
            "TOO_MANY_TOOL_CALLS",
            "A_REASON_FROM_THE_FUTURE",
        ],
        "stop",
    ),
}


@pytest.mark.parametrize(("gemini", "openai"), sorted(FINISH_REASONS.items()))
def test_finish_reasons(gemini: str, openai: str) -> None:
    answer = completion({"candidates": [candidate([{"text": "x"}], gemini)]})

    assert answer["choices"][0]["finish_reason"] == openai


@pytest.mark.parametrize(
    ("gemini", "openai"), [("STOP", "tool_calls"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter")]
)
def test_finish_reasons_of_a_candidate_with_a_function_call(gemini: str, openai: str) -> None:
    parts = [{"functionCall": {"name": "f", "args": {}}}]

    assert completion({"candidates": [candidate(parts, gemini)]})["choices"][0]["finish_reason"] == openai


def test_a_candidate_cut_by_the_filter_has_no_content() -> None:
    answer = completion({"candidates": [{"finishReason": "SAFETY", "index": 0}]})

    assert answer["choices"][0]["message"]["content"] is None
    assert answer["choices"][0]["finish_reason"] == "content_filter"


def test_thought_summaries_are_not_the_answer_and_text_parts_concatenate() -> None:
    parts: list[dict[str, Any]] = [
        {"text": "Let me think.", "thought": True},
        {"text": "Hello"},
        {"text": ", world"},
    ]

    assert (
        completion({"candidates": [candidate(parts)]})["choices"][0]["message"]["content"] == "Hello, world"
    )


def test_several_candidates_are_several_choices_in_index_order() -> None:
    body = {"candidates": [candidate([{"text": "b"}], index=1), candidate([{"text": "a"}], "MAX_TOKENS")]}

    choices = completion(body)["choices"]

    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "a", "length"),
        (1, "b", "stop"),
    ]


def test_usage_with_cache_and_tool_use_prompt_tokens() -> None:
    usage = {
        "promptTokenCount": 1000,  # includes the 600 cached
        "cachedContentTokenCount": 600,
        "toolUsePromptTokenCount": 50,
        "candidatesTokenCount": 40,
        "thoughtsTokenCount": 10,
        "totalTokenCount": 1100,
    }
    body = {"candidates": [candidate([{"text": "x"}])], "usageMetadata": usage}

    parsed = parse(body)

    assert parsed.usage == Usage(
        prompt_tokens=1050, completion_tokens=50, cached_tokens=600, reasoning_tokens=10
    )
    assert json.loads(parsed.body)["usage"] == {
        "prompt_tokens": 1050,
        "completion_tokens": 50,
        "total_tokens": 1100,
        "prompt_tokens_details": {"cached_tokens": 600},
        "completion_tokens_details": {"reasoning_tokens": 10},
    }


def test_no_usage_metadata_is_no_usage_not_zero() -> None:
    parsed = parse({"candidates": [candidate([{"text": "x"}])]})

    assert parsed.usage is None
    assert "usage" not in json.loads(parsed.body)


def test_without_response_id_and_model_version_the_answer_still_has_both() -> None:
    answer = completion({"candidates": [candidate([{"text": "x"}])]})

    assert answer["id"].startswith("chatcmpl-") and answer["model"] == "gemini-2.5-flash"


def test_the_adapter_stamps_the_time_of_the_answer() -> None:
    before = int(time.time())
    parsed = ADAPTER.parse_response(CALL, (GEMINI / "generate_content_response.json").read_bytes())

    assert before <= json.loads(parsed.body)["created"] <= time.time()
