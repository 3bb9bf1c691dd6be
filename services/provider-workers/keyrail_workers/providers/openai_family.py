"""OpenAI chat-completions wire format: OpenAI itself and every OpenAI-compatible provider.

Each provider is data (`ProviderSpec`: base URL, auth scheme, parameters it rejects) over one
shared adapter made of pure functions, so the whole family is tested without I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_common.messages import Usage


class ProviderSpec(msgspec.Struct, frozen=True):
    name: str
    base_url: str
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer "
    drop_params: frozenset[str] = frozenset()  # parameters the provider rejects: dropped, not failed
    drop_message_fields: frozenset[str] = frozenset()  # per-message fields it rejects
    stream_usage: bool = True  # accepts stream_options.include_usage


SPECS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec("openai", "https://api.openai.com/v1"),
        ProviderSpec(
            "groq",
            "https://api.groq.com/openai/v1",
            drop_params=frozenset({"logprobs", "logit_bias", "top_logprobs"}),
            drop_message_fields=frozenset({"name"}),
        ),
        ProviderSpec("deepinfra", "https://api.deepinfra.com/v1/openai"),
        ProviderSpec("together", "https://api.together.xyz/v1"),
        ProviderSpec("fireworks", "https://api.fireworks.ai/inference/v1"),
        ProviderSpec("xai", "https://api.x.ai/v1"),
        ProviderSpec(
            "perplexity", "https://api.perplexity.ai", drop_params=frozenset({"tools", "tool_choice"})
        ),
        ProviderSpec("baseten", "https://inference.baseten.co/v1"),
        ProviderSpec("minimax", "https://api.minimax.io/v1"),
        ProviderSpec("moonshot", "https://api.moonshot.ai/v1"),
        ProviderSpec("nebius", "https://api.tokenfactory.nebius.com/v1"),
    )
}

# A custom host that declares api_format "openai" but whose provider we have no spec for.
GENERIC = ProviderSpec("custom", "")


def spec_for(provider: str) -> ProviderSpec:
    return SPECS.get(provider, GENERIC)


class UpstreamRequest(msgspec.Struct):
    url: str
    headers: dict[str, str]
    body: bytes
    client_wants_usage: bool  # false: we asked for usage ourselves and must not forward that chunk


_json_decode = msgspec.json.decode
_json_encode = msgspec.json.Encoder().encode


def build_chat_request(
    spec: ProviderSpec,
    base_url: str,
    api_key: str,
    model: str,
    body: bytes,
    stream: bool,
    custom_headers: dict[str, str] | None = None,
) -> UpstreamRequest:
    """The client's body with the upstream model name, rejected params dropped, usage requested."""
    payload: dict[str, Any] = _json_decode(body)
    payload["model"] = model
    for param in spec.drop_params:
        payload.pop(param, None)
    if spec.drop_message_fields:
        for message in payload.get("messages", ()):
            for field in spec.drop_message_fields:
                message.pop(field, None)
    client_wants_usage = False
    if stream:
        options = payload.get("stream_options") or {}
        client_wants_usage = bool(options.get("include_usage"))
        if spec.stream_usage:
            # Always ask for usage so the activity log has token counts for every stream.
            payload["stream_options"] = {**options, "include_usage": True}
    headers = {
        **(custom_headers or {}),
        spec.auth_header: spec.auth_scheme + api_key,
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    return UpstreamRequest(
        url=(base_url or spec.base_url).rstrip("/") + "/chat/completions",
        headers=headers,
        body=_json_encode(payload),
        client_wants_usage=client_wants_usage,
    )


class _PromptDetails(msgspec.Struct):
    cached_tokens: int = 0


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class _WireUsage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None

    def to_usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cached_tokens=self.prompt_tokens_details.cached_tokens if self.prompt_tokens_details else 0,
            reasoning_tokens=(
                self.completion_tokens_details.reasoning_tokens if self.completion_tokens_details else 0
            ),
        )


class _UsageOnly(msgspec.Struct):
    usage: _WireUsage | None = None


_usage_decoder = msgspec.json.Decoder(_UsageOnly)


def response_usage(body: bytes) -> Usage | None:
    """Token usage of a non-streaming response (the body itself is forwarded untouched)."""
    try:
        wire = _usage_decoder.decode(body).usage
    except msgspec.DecodeError:
        return None
    return wire.to_usage() if wire else None


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[Any] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class _ChunkProbe(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _WireUsage | None = None
    error: dict[str, Any] | None = None


_chunk_decoder = msgspec.json.Decoder(_ChunkProbe)


class ChunkVerdict(msgspec.Struct):
    forward: bool  # send this chunk to the client
    has_content: bool  # first token arrived (time to first token)
    error: dict[str, Any] | None = None


class OpenAIStreamReader:
    """Reads one upstream SSE `data:` payload at a time and decides what the client gets.

    Chunks pass through byte for byte; the reader only looks inside for usage, content and errors.
    """

    def __init__(self, client_wants_usage: bool) -> None:
        self._client_wants_usage = client_wants_usage
        self.usage: Usage | None = None

    def read(self, data: bytes) -> ChunkVerdict:
        try:
            probe = _chunk_decoder.decode(data)
        except msgspec.DecodeError:
            return ChunkVerdict(
                forward=False, has_content=False, error={"message": "undecodable upstream chunk"}
            )
        if probe.error is not None:
            return ChunkVerdict(forward=True, has_content=False, error=probe.error)
        if probe.usage is not None:
            self.usage = probe.usage.to_usage()
            if not probe.choices and not self._client_wants_usage:
                return ChunkVerdict(forward=False, has_content=False)
        has_content = any(
            c.delta is not None and (bool(c.delta.content) or bool(c.delta.tool_calls)) for c in probe.choices
        )
        return ChunkVerdict(forward=True, has_content=has_content)
