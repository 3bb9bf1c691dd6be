"""What the Anthropic adapter's tests share: the fixtures, a call, and the official SDK's own
request types as a validator of what the adapter sends."""

from __future__ import annotations

import json
from typing import Any

import pydantic
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation
from keyrail_workers.adapters.anthropic import AnthropicAdapter
from keyrail_workers.adapters.base import AdapterCall
from tests.support.contracts import FIXTURES

ADAPTER = AnthropicAdapter()  # the concrete type: its build never refuses
ANTHROPIC = FIXTURES / "anthropic"
OPENAI = FIXTURES / "openai"
MODEL = "claude-sonnet-4-5"
API_KEY = "sk-ant-api03-ADAPTERTEST0123456789abcdef"

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
ANT_URL = "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"
OPENAI_MESSAGES_REQUEST: dict[str, Any] = {
    "model": "anthropic/claude-sonnet-4-5",
    "messages": [
        {
            "role": "system",
            "content": [
                {
                    "type": "text",
                    "text": "You are a concise assistant.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": ANT_URL, "detail": "high"}},
                {"type": "text", "text": "Compare these two images in one sentence."},
            ],
        },
    ],
    "max_tokens": 1024,
    "temperature": 0.2,
    "top_p": 0.9,
    "stop": "\n\nHuman:",
    "user": "7b1f5c0e-hashed-user-id",
    # OpenAI parameters Anthropic does not have: dropped.
    "n": 1,
    "seed": 42,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.1,
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"50256": -100},
    "store": True,
    "metadata": {"tags": "a,b"},
}
"""The OpenAI request that means what `anthropic/messages_request.json` says."""

_PARAMS = pydantic.TypeAdapter(MessageCreateParamsNonStreaming)
# The reference (§4.1) maps OpenAI's sampling parameters to these; the SDK snapshot installed here
# no longer types them, so they are checked by the tests that set them, not by the SDK types.
_SAMPLING = frozenset({"temperature", "top_p", "top_k"})


def call(body: dict[str, Any], stream: bool = False, model: str = MODEL, **extra: Any) -> AdapterCall:
    return AdapterCall(
        operation=Operation.CHAT,
        dialect=Dialect.OPENAI,
        model=model,
        body=json.dumps(body).encode(),
        stream=stream,
        base_url=extra.pop("base_url", "https://api.anthropic.com"),
        **extra,
    )


def fixture(name: str) -> Any:
    return json.loads((ANTHROPIC / name).read_bytes())


def _force(value: Any) -> Any:
    """pydantic validates iterables lazily: walking the result validates every nested block."""
    if isinstance(value, dict):
        return {key: _force(item) for key, item in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return [_force(item) for item in value]


def assert_valid_anthropic_request(payload: dict[str, Any]) -> None:
    """`payload` is a Messages body by the official SDK's types, with no field they do not know."""
    typed = set(MessageCreateParamsNonStreaming.__annotations__) | _SAMPLING
    assert set(payload) <= typed, set(payload) - typed
    without_sampling = {key: value for key, value in payload.items() if key not in _SAMPLING}
    without_sampling["stream"] = False  # the non-streaming params type says `stream: false`
    assert _force(_PARAMS.validate_python(without_sampling)) == without_sampling
