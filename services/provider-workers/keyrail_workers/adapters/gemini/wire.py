"""The parts of Gemini's `GenerateContentResponse` (§5.2) the adapter reads; every other field is
skipped by the decoder. A streamed chunk has the same shape, holding only the new parts."""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_workers.adapters.gemini.errors import GoogleStatus
from keyrail_workers.adapters.gemini.usage import UsageMetadata


class FunctionCall(msgspec.Struct):
    name: str = ""
    args: dict[str, Any] | None = None


class Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False  # a thought summary: reasoning, not the answer
    function_call: FunctionCall | None = None
    thought_signature: str | None = None


class Content(msgspec.Struct):
    parts: list[Part] = []


class Candidate(msgspec.Struct, rename="camel"):
    content: Content | None = None
    finish_reason: str | None = None
    index: int = 0  # proto3 JSON leaves out a zero


class PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None
    block_reason_message: str | None = None


class GenerateContentResponse(msgspec.Struct, rename="camel"):
    candidates: list[Candidate] = []
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str = ""
    response_id: str = ""
    error: GoogleStatus | None = None  # only inside a stream


response_decoder = msgspec.json.Decoder(GenerateContentResponse)
