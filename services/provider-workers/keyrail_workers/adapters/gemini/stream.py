"""Gemini `:streamGenerateContent?alt=sse` → OpenAI `chat.completion.chunk`s (§5.3).

Each `data:` is a whole GenerateContentResponse holding only the new parts; there is no event
name and no terminator: the body just ends. Each answer text part becomes a content chunk and
each `functionCall` (Gemini sends it whole) one tool-call chunk; the role-only preamble OpenAI
clients expect is held back until a candidate's first content, so nothing reaches the client,
and the router can still fall back, before the upstream said something.

Complete means every candidate seen has its `finishReason`: a body that ends before that was
cut off (`finish()` says STREAM_CUT). The usage chunk goes out, when the client asked for one,
as the last of the requested candidates (`n`) finishes; usage comes from the last
`usageMetadata`, the complete one.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import StreamStep, UpstreamError
from keyrail_workers.adapters.gemini.errors import in_band_error
from keyrail_workers.adapters.gemini.response import (
    answer_text,
    completion_id,
    finish_reason,
    no_candidates,
    tool_call,
)
from keyrail_workers.adapters.gemini.usage import openai_usage
from keyrail_workers.adapters.gemini.wire import Part, response_decoder

_encode = msgspec.json.Encoder().encode
_NOTHING = StreamStep()
_PREAMBLE: dict[str, Any] = {"role": "assistant", "content": ""}


class GeminiStreamTranslator:
    def __init__(self, model: str, client_wants_usage: bool, candidates: int = 1, created: int = 0) -> None:
        self.usage: Usage | None = None
        self._model = model
        self._client_wants_usage = client_wants_usage
        self._expected = max(candidates, 1)
        self._created = created or int(time.time())
        self._id = ""
        self._response_id = ""
        self._started: set[int] = set()  # candidates whose preamble went out
        self._tool_calls: dict[int, int] = {}  # candidate → its tool calls so far
        self._seen: set[int] = set()
        self._finished: set[int] = set()

    def feed(self, event: str, data: bytes) -> StreamStep:
        try:
            chunk = response_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return StreamStep(
                error=UpstreamError(FailureClass.STREAM_CUT, "Gemini sent an undecodable stream chunk")
            )
        if chunk.error is not None:
            return StreamStep(error=in_band_error(chunk.error))
        if chunk.usage_metadata is not None:
            self.usage = chunk.usage_metadata.to_usage()
        if not self._id:
            self._id, self._response_id = completion_id(chunk), chunk.response_id
            self._model = chunk.model_version or self._model
        if not chunk.candidates:
            feedback = chunk.prompt_feedback
            if feedback is not None and feedback.block_reason:
                return StreamStep(error=no_candidates(chunk))
            return _NOTHING  # e.g. usage only
        frames: list[bytes] = []
        content = False
        for candidate in chunk.candidates:
            index = candidate.index
            self._seen.add(index)
            for part in candidate.content.parts if candidate.content else ():
                delta = self._delta(index, part)
                if delta is not None:
                    frames += self._open(index)
                    frames.append(self._chunk(index, delta))
                    content = True
            if candidate.finish_reason and index not in self._finished:
                self._finished.add(index)
                reason = finish_reason(candidate.finish_reason, self._tool_calls.get(index, 0) > 0)
                frames += self._open(index)
                frames.append(self._chunk(index, {}, reason))
                if (
                    len(self._finished) == self._expected
                    and self._client_wants_usage
                    and self.usage is not None
                ):
                    frames.append(self._usage_chunk(self.usage))
        return StreamStep(frames=frames, content=content)

    def finish(self) -> UpstreamError | None:
        if self._finished and self._seen <= self._finished:
            return None
        return UpstreamError(FailureClass.STREAM_CUT, "the Gemini stream ended before its finishReason")

    def _delta(self, index: int, part: Part) -> dict[str, Any] | None:
        if (text := answer_text(part)) is not None:
            return {"content": text}
        if part.function_call is None:
            return None  # a thought summary, an empty part
        ordinal = self._tool_calls.get(index, 0)
        self._tool_calls[index] = ordinal + 1
        call = tool_call(self._response_id, index, ordinal, part.function_call, part)
        return {"tool_calls": [{"index": ordinal, **call}]}

    def _open(self, index: int) -> list[bytes]:
        if index in self._started:
            return []
        self._started.add(index)
        return [self._chunk(index, _PREAMBLE)]

    def _head(self) -> dict[str, Any]:
        head: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }
        if self._client_wants_usage:
            head["usage"] = None
        return head

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _encode({**self._head(), "choices": [choice]})

    def _usage_chunk(self, usage: Usage) -> bytes:
        return _encode({**self._head(), "choices": [], "usage": openai_usage(usage)})
