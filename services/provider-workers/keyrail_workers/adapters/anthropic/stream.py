"""Anthropic Messages stream (named SSE events, §4.3) → OpenAI `chat.completion.chunk` payloads.

A small state machine: `message_start` gives the id, model and input usage; text deltas become
`delta.content`; each `tool_use` block becomes tool call n (n counts tool calls, not Anthropic's
block index) whose `input_json_delta` fragments are its `arguments`; `message_delta` gives the
stop reason (the finish chunk) and the cumulative output usage; `message_stop` ends the stream,
after the usage chunk (`choices: []`) when the client asked for one. Thinking, signatures,
citations, pings and event types Anthropic adds later produce nothing.

The commit point: nothing goes to the client before the first text or tool call. The role chunk
that `message_start` makes is held and sent with that first content, so an in-band error before
it (`overloaded_error` inside a 200) leaves the router free to try the next target.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from keyrail_workers.adapters.anthropic.errors import WireError, in_band_error
from keyrail_workers.adapters.anthropic.response import finish_reason, tool_call
from keyrail_workers.adapters.anthropic.usage import WireUsage, openai_usage
from keyrail_workers.adapters.base import StreamStep, UpstreamError


class _MessageHead(msgspec.Struct):
    id: str = ""
    model: str = ""
    usage: WireUsage | None = None


class _ContentBlock(msgspec.Struct):
    type: str = ""
    text: str = ""
    id: str = ""
    name: str = ""


class _Delta(msgspec.Struct):
    """A content_block_delta's `delta` and a message_delta's `delta`, in one."""

    type: str = ""
    text: str = ""
    partial_json: str = ""
    stop_reason: str | None = None


class _Event(msgspec.Struct):
    type: str = ""
    index: int = 0
    message: _MessageHead | None = None
    content_block: _ContentBlock | None = None
    delta: _Delta | None = None
    usage: WireUsage | None = None
    error: WireError | None = None


_event_decoder = msgspec.json.Decoder(_Event)
_encode = msgspec.json.Encoder().encode
_NOTHING = StreamStep()
_ROLE_DELTA = b'{"role":"assistant","content":""}'
_EMPTY_DELTA = b"{}"


class AnthropicStreamTranslator:
    def __init__(self, model: str, client_wants_usage: bool) -> None:
        self._client_wants_usage = client_wants_usage
        self._model = model  # the upstream's own id (message_start's) replaces it
        self._head = self._chunk_head("", model)
        self._held: list[bytes] = []  # the role chunk, until the first content
        self._committed = False
        self._tool_index: dict[int, int] = {}  # Anthropic block index → OpenAI tool call index
        self._wire_usage: WireUsage | None = None
        self._finished = False  # the finish chunk went out
        self._done = False
        self.usage: Usage | None = None

    @staticmethod
    def _chunk_head(message_id: str, model: str) -> bytes:
        created = str(int(time.time())).encode()
        return (
            b'{"id":' + _encode(message_id) + b',"object":"chat.completion.chunk","created":' + created
            + b',"model":' + _encode(model)
        )  # fmt: skip

    def _chunk(self, delta: bytes, finish: str | None = None) -> bytes:
        reason = b"null" if finish is None else _encode(finish)
        return (
            self._head + b',"choices":[{"index":0,"delta":' + delta
            + b',"logprobs":null,"finish_reason":' + reason + b"}]}"
        )  # fmt: skip

    def _send(self, frames: list[bytes], content: bool) -> StreamStep:
        """Frames for the client, after the held role chunk if nothing went out yet."""
        if not self._committed:
            self._committed = True
            frames = [*self._held, *frames]
            self._held = []
        return StreamStep(frames=frames, content=content)

    def feed(self, event: str, data: bytes) -> StreamStep:
        try:
            probe = _event_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return StreamStep(
                error=UpstreamError(FailureClass.STREAM_CUT, "the upstream sent an undecodable stream event")
            )
        kind = probe.type or event
        if kind == "content_block_delta":
            return self._content_delta(probe)
        if kind == "content_block_start":
            return self._block_start(probe)
        if kind == "message_start":
            return self._message_start(probe)
        if kind == "message_delta":
            return self._message_delta(probe)
        if kind == "message_stop":
            return self._message_stop()
        if kind == "error":
            return StreamStep(error=in_band_error(probe.error))
        return _NOTHING  # ping, content_block_stop, and event types added later

    def _message_start(self, probe: _Event) -> StreamStep:
        message = probe.message or _MessageHead()
        self._head = self._chunk_head(message.id, message.model or self._model)
        self._record_usage(message.usage)
        self._held = [self._chunk(_ROLE_DELTA)]
        return _NOTHING

    def _block_start(self, probe: _Event) -> StreamStep:
        block = probe.content_block
        if block is None:
            return _NOTHING
        if block.type == "tool_use":
            index = self._tool_index[probe.index] = len(self._tool_index)
            delta: dict[str, Any] = {"tool_calls": [tool_call(index, block.id, block.name, "")]}
            return self._send([self._chunk(_encode(delta))], content=True)
        if block.type == "text" and block.text:
            return self._send([self._chunk(_encode({"content": block.text}))], content=True)
        return _NOTHING  # thinking, redacted_thinking, server tool blocks

    def _content_delta(self, probe: _Event) -> StreamStep:
        delta = probe.delta
        if delta is None:
            return _NOTHING
        if delta.type == "text_delta" and delta.text:
            return self._send([self._chunk(_encode({"content": delta.text}))], content=True)
        if delta.type == "input_json_delta" and delta.partial_json:
            index = self._tool_index.get(probe.index)
            if index is None:
                return _NOTHING  # arguments of a block that was not a tool_use
            fragment = {"tool_calls": [{"index": index, "function": {"arguments": delta.partial_json}}]}
            return self._send([self._chunk(_encode(fragment))], content=True)
        return _NOTHING  # thinking_delta, signature_delta, citations_delta, empty fragments

    def _record_usage(self, usage: WireUsage | None) -> None:
        if usage is None:
            return
        self._wire_usage = usage if self._wire_usage is None else self._wire_usage.updated(usage)
        self.usage = self._wire_usage.to_usage()

    def _finish_frames(self, stop_reason: str | None) -> StreamStep:
        self._finished = True
        return self._send([self._chunk(_EMPTY_DELTA, finish_reason(stop_reason))], content=False)

    def _message_delta(self, probe: _Event) -> StreamStep:
        self._record_usage(probe.usage)
        if self._finished:
            return _NOTHING
        return self._finish_frames(probe.delta.stop_reason if probe.delta else None)

    def _message_stop(self) -> StreamStep:
        self._done = True
        frames = [] if self._finished else self._finish_frames(None).frames
        if self._client_wants_usage and self.usage is not None:
            usage = _encode(openai_usage(self.usage))
            frames.append(self._head + b',"choices":[],"usage":' + usage + b"}")
        return StreamStep(frames=frames, done=True)

    def finish(self) -> UpstreamError | None:
        if self._done:
            return None
        return UpstreamError(FailureClass.STREAM_CUT, "the upstream closed the stream before message_stop")
