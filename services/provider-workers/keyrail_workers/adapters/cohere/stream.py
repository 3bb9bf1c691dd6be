"""Cohere v2 chat stream → OpenAI `chat.completion.chunk`s (reference §8), event by event.

Only content (a text delta, a tool-call fragment) commits the stream: the role chunk waits for
the first of them, so an upstream that fails before any content sends the client nothing and
the router may still fall back. `message-end` is the terminal event (it carries the finish
reason and the usage); the `[DONE]` that may follow is not needed. Tool plans, citations,
thinking and debug events have no OpenAI chunk and are dropped.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import StreamStep, UpstreamError
from keyrail_workers.adapters.cohere.wire import (
    WireToolCall,
    WireUsage,
    finish_reason,
    openai_tool_call,
    openai_usage,
)

DONE = b"[DONE]"


class _Content(msgspec.Struct):
    text: str | None = None


class _DeltaMessage(msgspec.Struct):
    # A list in `message-start` (empty), one object in the content and tool-call events.
    content: _Content | list[Any] | None = None
    tool_calls: WireToolCall | list[Any] | None = None


class _Delta(msgspec.Struct):
    message: _DeltaMessage | None = None
    finish_reason: str | None = None
    usage: WireUsage | None = None
    error: str | None = None


class _Event(msgspec.Struct):
    type: str = ""
    id: str | None = None
    index: int = 0
    delta: _Delta | None = None


_decode_event = msgspec.json.Decoder(_Event).decode
_json_encode = msgspec.json.Encoder().encode
_NOTHING = StreamStep()


def _cut(message: str) -> StreamStep:
    return StreamStep(error=UpstreamError(FailureClass.STREAM_CUT, message))


class CohereStreamTranslator:
    def __init__(self, model: str, client_wants_usage: bool) -> None:
        self._model = model
        self._client_wants_usage = client_wants_usage
        self._created = int(time.time())
        self._id = ""
        self._role_sent = False
        self._tool_index: dict[int, int] = {}  # Cohere's event index → OpenAI's tool_calls index
        self._ended = False
        self.usage: Usage | None = None

    def _chunk(self, delta: dict[str, Any], reason: str | None = None) -> bytes:
        return _json_encode(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
            }
        )

    def _frames(self, *deltas: dict[str, Any]) -> list[bytes]:
        frames = [] if self._role_sent else [self._chunk({"role": "assistant", "content": ""})]
        self._role_sent = True
        return frames + [self._chunk(delta) for delta in deltas]

    def feed(self, event: str, data: bytes) -> StreamStep:
        if data == DONE:
            return (
                StreamStep(done=True) if self._ended else _cut("the upstream sent [DONE] before message-end")
            )
        try:
            parsed = _decode_event(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return _cut("the upstream sent an undecodable stream event")
        kind = parsed.type or event
        delta = parsed.delta or _Delta()
        message = delta.message or _DeltaMessage()
        if kind == "message-start":
            self._id = parsed.id or self._id
            return _NOTHING
        if kind == "content-delta":
            content = message.content
            text = content.text if isinstance(content, _Content) else None
            return StreamStep(frames=self._frames({"content": text}), content=True) if text else _NOTHING
        if kind in ("tool-call-start", "tool-call-delta"):
            return self._tool_call(kind, parsed.index, message.tool_calls)
        if kind == "message-end":
            return self._end(delta)
        return _NOTHING  # content-start/-end, tool-plan-delta, tool-call-end, citations, debug

    def _tool_call(self, kind: str, index: int, call: WireToolCall | list[Any] | None) -> StreamStep:
        if not isinstance(call, WireToolCall):
            return _cut(f"the upstream sent a {kind} event without its tool call")
        if kind == "tool-call-start":
            start = self._tool_index.setdefault(index, len(self._tool_index))
            fragment = {"index": start, **openai_tool_call(call)}
        else:
            position = self._tool_index.get(index)
            if position is None:
                return _cut("the upstream sent a tool-call-delta before its tool-call-start")
            arguments = call.function.arguments if call.function else None
            fragment = {"index": position, "function": {"arguments": arguments or ""}}
        return StreamStep(frames=self._frames({"tool_calls": [fragment]}), content=True)

    def _end(self, delta: _Delta) -> StreamStep:
        if delta.usage is not None:
            self.usage = delta.usage.to_usage()
        reason = finish_reason(delta.finish_reason, delta.error)
        if isinstance(reason, UpstreamError):
            return StreamStep(error=reason)
        self._ended = True
        frames = self._frames()
        frames.append(self._chunk({}, reason))
        if self._client_wants_usage and self.usage is not None:
            usage_chunk = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": openai_usage(self.usage),
            }
            frames.append(_json_encode(usage_chunk))
        return StreamStep(frames=frames, done=True)

    def finish(self) -> UpstreamError | None:
        if self._ended:
            return None
        return UpstreamError(FailureClass.STREAM_CUT, "the upstream closed the stream before message-end")
