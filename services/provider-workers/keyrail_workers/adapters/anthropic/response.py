"""Anthropic `Message` → OpenAI `chat.completion` (§4.2), with finish reasons per §1.1 and usage per §1.2.

Text blocks are the message content; `tool_use` blocks are tool calls (`arguments` is the JSON
text of `input`). Thinking blocks are dropped: OpenAI's chat format has no place for them, and
their tokens are still counted (`reasoning_tokens`).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from keyrail_workers.adapters.anthropic.usage import WireUsage, openai_usage
from keyrail_workers.adapters.base import AdapterCall, ParsedResponse

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",  # a server-tool loop paused; resending continues it
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None) -> str:
    """OpenAI's finish reason; an unknown (newer) stop reason is a plain stop."""
    return FINISH_REASONS.get(stop_reason or "", "stop")


class _Block(msgspec.Struct):
    type: str
    text: str = ""
    id: str = ""
    name: str = ""
    input: Any = None


class _Message(msgspec.Struct):
    id: str = ""
    model: str = ""
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: WireUsage | None = None


_message_decoder = msgspec.json.Decoder(_Message)
_json_encode = msgspec.json.Encoder().encode


class UndecodableResponse(Exception):
    """A 2xx body that is not an Anthropic Message. The adapter interface has no error path for a
    successful status, so the worker answers it as its own failure (WORKER_ERROR, which falls back)."""


def tool_call(index: int | None, block_id: str, name: str, arguments: str) -> dict[str, Any]:
    """An OpenAI tool call; `index` only in a stream's delta."""
    call: dict[str, Any] = {} if index is None else {"index": index}
    call.update(id=block_id, type="function", function={"name": name, "arguments": arguments})
    return call


def parse_messages_response(call: AdapterCall, body: bytes) -> ParsedResponse:
    try:
        message = _message_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UndecodableResponse(str(exc)) from exc
    text = "".join(block.text for block in message.content if block.type == "text")
    tool_calls = [
        tool_call(None, block.id, block.name, _json_encode(block.input or {}).decode())
        for block in message.content
        if block.type == "tool_use"
    ]
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": text or (None if tool_calls else ""),
        "refusal": None,
    }
    if tool_calls:
        reply["tool_calls"] = tool_calls
    usage = message.usage.to_usage() if message.usage is not None else None
    completion: dict[str, Any] = {
        "id": message.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.model or call.model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.stop_reason),
            }
        ],
    }
    if usage is not None:
        completion["usage"] = openai_usage(usage)
    return ParsedResponse(body=_json_encode(completion), usage=usage)
