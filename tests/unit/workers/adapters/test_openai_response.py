"""The OpenAI adapter's responses: forwarded byte for byte to an OpenAI-dialect client, usage read out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keyrail_common.messages import Dialect, Usage
from keyrail_common.registry import Operation
from keyrail_workers.adapters.base import AdapterCall
from keyrail_workers.adapters.openai import OpenAIAdapter
from keyrail_workers.adapters.openai.response import response_usage
from tests.support.contracts import FIXTURES

ADAPTER = OpenAIAdapter()  # the concrete type: its build and parse never fail
OPENAI = FIXTURES / "openai"
COMPATIBLE = FIXTURES / "openai_compatible"
RESPONSE_FIXTURES = sorted([*OPENAI.glob("*_response.json"), *COMPATIBLE.glob("*_response.json")])
CALL = AdapterCall(
    operation=Operation.CHAT,
    dialect=Dialect.OPENAI,
    model="gpt-4.1-mini",
    body=b"{}",
    stream=False,
    base_url="https://api.openai.com/v1",
)


def usage_of(body: dict[str, Any]) -> Usage | None:
    """OpenAI's usage object read independently of the adapter (cached and reasoning are subsets)."""
    usage = body.get("usage")
    if not usage:
        return None
    return Usage(
        prompt_tokens=usage.get("prompt_tokens", 0),
        completion_tokens=usage.get("completion_tokens", 0),
        cached_tokens=(usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
        reasoning_tokens=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
    )


def test_there_are_response_fixtures() -> None:
    names = {p.name for p in RESPONSE_FIXTURES}
    assert {"chat_response.json", "tool_calls_response.json", "groq_chat_response.json"} <= names


@pytest.mark.parametrize("path", RESPONSE_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_responses_pass_unchanged_with_their_usage(path: Path) -> None:
    raw = path.read_bytes()

    parsed = ADAPTER.parse_response(CALL, raw)

    assert parsed.body == raw  # the very bytes, not a re-encoding
    assert parsed.usage == usage_of(json.loads(raw))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # Chat answers' usage is the conformance suite's; these are the other OpenAI bodies.
        (OPENAI / "embeddings_response.json", Usage(prompt_tokens=8)),
        (OPENAI / "models_list_response.json", None),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else None,
)
def test_response_usage_of_fixture_responses(path: Path, expected: Usage | None) -> None:
    assert response_usage(path.read_bytes()) == expected
    assert ADAPTER.parse_response(CALL, path.read_bytes()).usage == expected


def test_response_usage_reads_cached_and_reasoning_tokens() -> None:
    body = {
        "id": "chatcmpl-1",
        "choices": [],
        "usage": {
            "prompt_tokens": 2000,
            "completion_tokens": 300,
            "total_tokens": 2300,
            "prompt_tokens_details": {"cached_tokens": 1536, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 256},
        },
    }

    assert response_usage(json.dumps(body).encode()) == Usage(
        prompt_tokens=2000, completion_tokens=300, cached_tokens=1536, reasoning_tokens=256
    )


def test_perplexitys_reasoning_tokens_beside_the_completion_tokens_are_read_and_citations_kept() -> None:
    body = json.loads((COMPATIBLE / "perplexity_chat_response.json").read_bytes())
    body["usage"] |= {"completion_tokens": 400, "reasoning_tokens": 320, "citation_tokens": 900}
    raw = json.dumps(body).encode()

    parsed = ADAPTER.parse_response(CALL, raw)

    assert parsed.usage == Usage(prompt_tokens=9, completion_tokens=400, reasoning_tokens=320)
    assert json.loads(parsed.body)["citations"] == body["citations"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "chatcmpl-1", "choices": []}',
        b'{"usage": null}',
        (OPENAI / "error_429_rate_limit.json").read_bytes(),
        b"<html>502 Bad Gateway</html>",
        b"",
        b'{"usage": "lots"}',
    ],
    ids=["no-usage", "null-usage", "error-body", "html", "empty", "usage-not-an-object"],
)
def test_response_usage_is_none_when_there_is_none(body: bytes) -> None:
    assert response_usage(body) is None
    parsed = ADAPTER.parse_response(CALL, body)
    assert parsed.usage is None and parsed.body == body
