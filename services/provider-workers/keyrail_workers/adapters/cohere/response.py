"""Cohere v2 chat response → OpenAI `chat.completion` (reference §8): text parts joined into
`content`, tool calls (already OpenAI-shaped) kept, `finish_reason` per §1.1, `usage` per §1.2.

`tool_plan` (what the model says it will do before calling tools) and citations have no OpenAI
field and are dropped; a failed generation (ERROR, TIMEOUT) is a failure, not an answer.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import AdapterCall, ParsedResponse, UpstreamError
from keyrail_workers.adapters.cohere.wire import (
    WireToolCall,
    WireUsage,
    finish_reason,
    openai_tool_call,
    openai_usage,
)


class _Content(msgspec.Struct):
    type: str = "text"
    text: str | None = None


class _Message(msgspec.Struct):
    content: list[_Content] | None = None
    tool_calls: list[WireToolCall] | None = None


class _Response(msgspec.Struct):
    id: str = ""
    finish_reason: str | None = None
    message: _Message | None = None
    usage: WireUsage | None = None


_decode_response = msgspec.json.Decoder(_Response).decode
_json_encode = msgspec.json.Encoder().encode


def _message(message: _Message) -> dict[str, Any]:
    text = "".join(c.text or "" for c in message.content or () if c.type == "text")
    out: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if message.tool_calls:
        out["content"] = text or None  # OpenAI's tool-call turns carry no content
        out["tool_calls"] = [openai_tool_call(c) for c in message.tool_calls]
    return out


def parse_cohere_response(call: AdapterCall, body: bytes) -> ParsedResponse:
    try:
        response = _decode_response(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        error = UpstreamError(
            FailureClass.UPSTREAM_5XX,
            f"the answer is not a Cohere v2 chat response ({exc})",
            upstream_status=200,
        )
        return ParsedResponse(body=b"", usage=None, error=error)
    usage = response.usage.to_usage() if response.usage else None
    reason = finish_reason(response.finish_reason)
    if isinstance(reason, UpstreamError):  # a failed generation: its tokens were still used
        reason.upstream_status = 200
        return ParsedResponse(body=b"", usage=usage, error=reason)
    answer: dict[str, Any] = {
        "id": response.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "message": _message(response.message or _Message()),
                "logprobs": None,
                "finish_reason": reason,
            }
        ],
    }
    if usage is not None:
        answer["usage"] = openai_usage(usage)
    return ParsedResponse(body=_json_encode(answer), usage=usage)
