"""OpenAI chat-completions stream: chunks pass through byte for byte; the translator only looks
inside for usage, content (the commit point) and in-band errors, and drops the usage chunk the
client did not ask for (we always ask the upstream for it). A provider that puts usage elsewhere
names the object in the registry (`usage_envelope`; Groq's `x_groq.usage`).

Chunks before the first content (the role-only preamble) are held back and sent with it: until
content arrives nothing has reached the client, so an upstream failure there is an attempt the
router may still fall back from. A stream that ends without content sends what it held.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import StreamStep, UpstreamError
from keyrail_workers.adapters.openai.errors import in_band_error
from keyrail_workers.adapters.openai.usage import WireUsage

DONE = b"[DONE]"


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[Any] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class _ChunkProbe(msgspec.Struct):
    choices: list[_Choice] = []
    usage: WireUsage | None = None
    error: dict[str, Any] | None = None


class _UsageEnvelope(msgspec.Struct):
    usage: WireUsage | None = None


@functools.cache
def _chunk_decoder(usage_envelope: str) -> msgspec.json.Decoder[Any]:
    """The probe's decoder; with the provider's usage envelope (a registry quirk) read as well."""
    if not usage_envelope:
        return msgspec.json.Decoder(_ChunkProbe)
    probe = msgspec.defstruct(
        "_EnvelopedChunkProbe", [(usage_envelope, _UsageEnvelope | None, None)], bases=(_ChunkProbe,)
    )
    return msgspec.json.Decoder(probe)


_NOTHING = StreamStep()


class OpenAIStreamTranslator:
    def __init__(self, client_wants_usage: bool, usage_envelope: str = "") -> None:
        self._client_wants_usage = client_wants_usage
        self._usage_envelope = usage_envelope
        self._decoder = _chunk_decoder(usage_envelope)
        self._done = False
        self._committed = False
        self._held: list[bytes] = []
        self.usage: Usage | None = None

    def feed(self, event: str, data: bytes) -> StreamStep:
        if data == DONE:
            self._done = True
            held, self._held = self._held, []
            return StreamStep(frames=held, done=True)
        try:
            probe: _ChunkProbe = self._decoder.decode(data)
        except msgspec.DecodeError:
            return StreamStep(
                error=UpstreamError(FailureClass.STREAM_CUT, "the upstream sent an undecodable stream chunk")
            )
        if probe.error is not None:
            return StreamStep(error=in_band_error(probe.error))
        if probe.usage is None and self._usage_envelope:
            envelope: _UsageEnvelope | None = getattr(probe, self._usage_envelope)
            if envelope is not None and envelope.usage is not None:
                self.usage = envelope.usage.to_usage()
        if probe.usage is not None:
            self.usage = probe.usage.to_usage()
            if not probe.choices and not self._client_wants_usage:
                return _NOTHING
        elif not probe.choices:
            # Nothing for the client: Azure's first chunk carries only `prompt_filter_results`
            # (and an empty id, model and object, which no OpenAI client expects).
            return _NOTHING
        content = any(
            c.delta is not None and (bool(c.delta.content) or bool(c.delta.tool_calls)) for c in probe.choices
        )
        if self._committed:
            return StreamStep(frames=[data], content=content)
        if not content:
            self._held.append(data)
            return _NOTHING
        self._committed = True
        frames, self._held = [*self._held, data], []
        return StreamStep(frames=frames, content=True)

    def finish(self) -> UpstreamError | None:
        if self._done:
            return None
        return UpstreamError(FailureClass.STREAM_CUT, "the upstream closed the stream before [DONE]")
