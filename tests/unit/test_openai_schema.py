"""The schema helper accepts OpenAI's own recorded payloads and rejects broken ones."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.support.contracts import FIXTURES as SHARED_FIXTURES
from tests.support.openai_schema import load_spec, validate_component

FIXTURES = SHARED_FIXTURES / "openai"


def _json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _sse_events(name: str) -> list[Any]:
    text = (FIXTURES / name).read_text()
    datas = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    return [json.loads(data) for data in datas[:-1]]


def test_chat_response_fixture_validates() -> None:
    validate_component("CreateChatCompletionResponse", _json("chat_response.json"))


def test_every_stream_chunk_fixture_validates() -> None:
    events = _sse_events("chat_stream_with_usage.sse")
    assert len(events) == 11
    for event in events:
        validate_component("CreateChatCompletionStreamResponse", event)
    # The fixture really exercises the nullable fields and the usage-only final chunk.
    assert events[0]["choices"][0]["finish_reason"] is None
    assert events[0]["usage"] is None
    assert events[-1]["choices"] == [] and events[-1]["usage"]["total_tokens"] == 20


@pytest.mark.parametrize(
    "name", ["error_401_invalid_api_key.json", "error_429_rate_limit.json", "error_404_model_not_found.json"]
)
def test_error_fixtures_validate(name: str) -> None:
    validate_component("ErrorResponse", _json(name))


def test_models_list_fixture_validates() -> None:
    validate_component("ListModelsResponse", _json("models_list_response.json"))


def test_chat_response_without_choices_is_rejected() -> None:
    payload = _json("chat_response.json")
    del payload["choices"]
    with pytest.raises(AssertionError, match="'choices' is a required property"):
        validate_component("CreateChatCompletionResponse", payload)


def test_chat_response_with_wrong_object_is_rejected() -> None:
    payload = _json("chat_response.json")
    payload["object"] = "chat.completion.chunk"
    with pytest.raises(AssertionError, match=r"\$\.object"):
        validate_component("CreateChatCompletionResponse", payload)


def test_nested_ref_violation_is_rejected() -> None:
    """Errors behind a $ref (ChatCompletionResponseMessage, CompletionUsage) are found too."""
    payload = _json("chat_response.json")
    payload["choices"][0]["message"]["role"] = "user"
    payload["usage"]["total_tokens"] = "115"
    with pytest.raises(AssertionError) as caught:
        validate_component("CreateChatCompletionResponse", payload)
    assert "$.choices[0].message.role" in str(caught.value)
    assert "$.usage.total_tokens" in str(caught.value)


def test_nullable_keyword_accepts_null_but_still_checks_values() -> None:
    """The spec marks stream fields with OpenAPI 3.0 ``nullable``; null must pass, garbage must not."""
    chunk = _sse_events("chat_stream_with_usage.sse")[0]
    bad = copy.deepcopy(chunk)
    bad["choices"][0]["finish_reason"] = "bogus"
    with pytest.raises(AssertionError, match="finish_reason"):
        validate_component("CreateChatCompletionStreamResponse", bad)
    bad = copy.deepcopy(chunk)
    bad["usage"] = {"prompt_tokens": 1}
    with pytest.raises(AssertionError, match="usage"):
        validate_component("CreateChatCompletionStreamResponse", bad)


def test_no_nullable_keyword_survives_loading() -> None:
    def walk(node: Any) -> int:
        if isinstance(node, dict):
            own = 1 if isinstance(node.get("nullable"), bool) else 0
            return own + sum(walk(value) for value in node.values())
        if isinstance(node, list):
            return sum(walk(item) for item in node)
        return 0

    assert walk(load_spec()) == 0


def test_unknown_component_is_an_error() -> None:
    with pytest.raises(KeyError):
        validate_component("NoSuchSchema", {})
