"""OpenAI embeddings ↔ Gemini's `embedContent` / `batchEmbedContents` (reference §5).

One string goes to `POST {base}/models/{model}:embedContent`
(`{"model": "models/{model}", "content": {"parts": [{"text": ...}]}}`, answered with
`{"embedding": {"values": [...]}}`); a list of strings to `:batchEmbedContents`
(`{"requests": [<one such request per text>]}`, answered with `{"embeddings": [{"values": [...]}]}`),
each in the client's order. OpenAI's `dimensions` is Gemini's `outputDimensionality`.

Gemini's embedding answers report no token counts on AI Studio; when an answer carries
`usageMetadata` (Vertex's newer models do) its `promptTokenCount` is the usage, otherwise the usage
is missing (the activity row says so, and the client's `usage` counts 0).
"""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import ParsedResponse
from keyrail_workers.adapters.openai.embeddings import decode_embeddings_call, embeddings_answer


class _Values(msgspec.Struct):
    values: list[float] = []


class _TokenCount(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0


class _EmbedResponse(msgspec.Struct, rename="camel"):
    embedding: _Values | None = None  # embedContent
    embeddings: list[_Values] | None = None  # batchEmbedContents
    usage_metadata: _TokenCount | None = None


_response_decoder = msgspec.json.Decoder(_EmbedResponse)
_encode = msgspec.json.Encoder().encode


def embeddings_method(body: bytes) -> str:
    """`embedContent` for one string, `batchEmbedContents` for a list (raises UntranslatableRequest)."""
    call, _ = decode_embeddings_call(body)
    return "embedContent" if isinstance(call.input, str) else "batchEmbedContents"


def translate_embeddings(body: bytes, model: str) -> bytes:
    """The Gemini request body for the client's OpenAI embeddings body (raises UntranslatableRequest)."""
    call, texts = decode_embeddings_call(body)
    name = f"models/{model.removeprefix('models/')}"

    def one(text: str) -> dict[str, Any]:
        request: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if call.dimensions is not None:
            request["outputDimensionality"] = call.dimensions
        return request

    if isinstance(call.input, str):
        return _encode(one(call.input))
    return _encode({"requests": [one(text) for text in texts]})


def parse_embeddings_response(
    client_body: bytes, body: bytes, model: str, upstream: str = "Gemini"
) -> ParsedResponse:
    """The client's answer (`upstream`: who answered, for an error; Vertex's embedContent too)."""
    try:
        answer = _response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return embeddings_answer(client_body, None, model, None, upstream)
    if answer.embeddings is not None:
        vectors: list[list[float]] | None = [e.values for e in answer.embeddings]
    else:
        vectors = [answer.embedding.values] if answer.embedding is not None else None
    usage = Usage(prompt_tokens=answer.usage_metadata.prompt_token_count) if answer.usage_metadata else None
    return embeddings_answer(client_body, vectors, model, usage, upstream)
