"""Gemini `GenerateContentResponse` → OpenAI `chat.completion` (§5.2), and what a stream shares
with it: finish reasons (§1.1), tool calls, and the failures a 200 can be.

A prompt Gemini blocked comes back as a 200 without candidates and with
`promptFeedback.blockReason`: that is the content filter refusing the caller's request, so it is
a failure naming the reason, never an empty answer.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import ParsedResponse, UpstreamError
from keyrail_workers.adapters.gemini.tool_ids import tool_call_id
from keyrail_workers.adapters.gemini.usage import openai_usage
from keyrail_workers.adapters.gemini.wire import (
    Candidate,
    FunctionCall,
    GenerateContentResponse,
    Part,
    response_decoder,
)

_encode = msgspec.json.Encoder().encode
_FILTERED = (
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
)
# Everything else (LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL, FINISH_REASON_UNSPECIFIED, ...) is `stop`.
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", **dict.fromkeys(_FILTERED, "content_filter")}


def finish_reason(gemini: str, has_tool_calls: bool) -> str:
    """Gemini reports STOP for function calls too: the parts tell them apart."""
    if gemini == "STOP" and has_tool_calls:
        return "tool_calls"
    return _FINISH.get(gemini, "stop")


def completion_id(response: GenerateContentResponse) -> str:
    return response.response_id or "chatcmpl-" + secrets.token_hex(12)


def answer_text(part: Part) -> str | None:
    """The part's text when it is part of the answer (thought summaries are not)."""
    return part.text if part.text and not part.thought else None


def tool_call(
    response_id: str, candidate: int, ordinal: int, call: FunctionCall, part: Part
) -> dict[str, Any]:
    arguments = _encode(call.args or {}).decode()
    return {
        "id": tool_call_id(response_id, candidate, ordinal, arguments, part.thought_signature),
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def no_candidates(response: GenerateContentResponse) -> UpstreamError:
    """A 200 without candidates: a blocked prompt (content filter), else a broken answer."""
    feedback = response.prompt_feedback
    if feedback is None or not feedback.block_reason:
        return UpstreamError(
            FailureClass.UPSTREAM_5XX, "Gemini answered without candidates or a block reason", 200
        )
    message = (
        f"Gemini's content filter blocked the prompt (promptFeedback.blockReason {feedback.block_reason})"
    )
    if feedback.block_reason_message:
        message += f": {feedback.block_reason_message}"
    return UpstreamError(FailureClass.CONTENT_FILTER, message, 200, provider_code=feedback.block_reason)


def _choice(response_id: str, candidate: Candidate) -> dict[str, Any]:
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for part in candidate.content.parts if candidate.content else ():
        if (text := answer_text(part)) is not None:
            texts.append(text)
        elif part.function_call is not None:
            tool_calls.append(
                tool_call(response_id, candidate.index, len(tool_calls), part.function_call, part)
            )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "index": candidate.index,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(candidate.finish_reason or "STOP", bool(tool_calls)),
    }


def parse_chat_response(body: bytes, model: str, created: int) -> ParsedResponse:
    try:
        response = response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        error = UpstreamError(FailureClass.UPSTREAM_5XX, "Gemini answered with an undecodable body", 200)
        return ParsedResponse(body=b"", usage=None, error=error)
    usage = response.usage_metadata.to_usage() if response.usage_metadata else None
    if not response.candidates:
        return ParsedResponse(body=b"", usage=usage, error=no_candidates(response))
    response_id = completion_id(response)
    completion: dict[str, Any] = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": response.model_version or model,
        "choices": [
            _choice(response.response_id, c) for c in sorted(response.candidates, key=lambda c: c.index)
        ],
    }
    if usage is not None:
        completion["usage"] = openai_usage(usage)
    return ParsedResponse(body=_encode(completion), usage=usage)
