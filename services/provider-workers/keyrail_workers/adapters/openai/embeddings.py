"""OpenAI embeddings (`POST /embeddings`): to an OpenAI-format upstream the client's body goes as
sent but for the model. For adapters whose upstream speaks another format (Gemini, Cohere), the
client's `CreateEmbeddingRequest` read once and the `CreateEmbeddingResponse` written back.

Only text inputs translate: token arrays (lists of ints) are OpenAI's own tokenizer's ids, which no
other provider reads, so they are refused before any HTTP as UNSUPPORTED (another target may still
be an OpenAI-format one). `encoding_format: "base64"` (the `openai` SDK's default) is honoured the
way OpenAI does it: little-endian float32 values, base64-encoded.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any, Literal

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import (
    AdapterCall,
    Credential,
    ParsedResponse,
    UntranslatableRequest,
    UpstreamError,
    UpstreamRequest,
)
from keyrail_workers.adapters.openai.request import chat_headers


class EmbeddingsCall(msgspec.Struct):
    """What another wire format needs of the client's embeddings body."""

    input: str | list[Any]
    dimensions: int | None = None
    encoding_format: Literal["float", "base64"] = "float"
    input_type: str | None = None  # Cohere's extension (openai SDK `extra_body`); others ignore it
    task_type: str | None = None  # Vertex AI's extension, the same way


class _Format(msgspec.Struct):
    encoding_format: Literal["float", "base64"] = "float"


_call_decoder = msgspec.json.Decoder(EmbeddingsCall)
_format_decoder = msgspec.json.Decoder(_Format)
_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


def build_embeddings_request(call: AdapterCall, credential: Credential) -> UpstreamRequest:
    """The client's embeddings body with the upstream model name; nothing else changes."""
    payload: dict[str, Any] = _decode(call.body)
    payload["model"] = call.model
    return UpstreamRequest(
        method="POST",
        url=call.base_url.rstrip("/") + "/embeddings",
        headers=chat_headers(call, credential, call.quirks) | {"Accept": "application/json"},
        body=_encode(payload),
    )


def decode_embeddings_call(body: bytes) -> tuple[EmbeddingsCall, list[str]]:
    """The client's request and its texts, in order; raises UntranslatableRequest."""
    try:
        call = _call_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UntranslatableRequest(f"the body is not an OpenAI embeddings request: {exc}") from exc
    texts = [call.input] if isinstance(call.input, str) else call.input
    if not texts:
        raise UntranslatableRequest("'input' must not be empty.", param="input")
    if not all(isinstance(text, str) for text in texts):
        raise UntranslatableRequest(
            "'input' holds token arrays, which only OpenAI-format upstreams read: send the text instead.",
            param="input",
            failure_class=FailureClass.UNSUPPORTED,
        )
    if call.dimensions is not None and call.dimensions < 1:
        raise UntranslatableRequest("'dimensions' must be a positive integer.", param="dimensions")
    return call, texts


def requested_encoding(body: bytes) -> Literal["float", "base64"]:
    """The client's `encoding_format` (read again when the response is written; "float" if unreadable)."""
    try:
        return _format_decoder.decode(body).encoding_format
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "float"


def _base64_float32(vector: list[float]) -> str:
    values = array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def openai_embeddings_body(
    vectors: list[list[float]], model: str, prompt_tokens: int, encoding: Literal["float", "base64"]
) -> bytes:
    """OpenAI's CreateEmbeddingResponse. `prompt_tokens` is 0 when the upstream reported none (the
    response schema requires the field; the activity row says the usage was missing)."""
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _base64_float32(vector) if encoding == "base64" else vector,
        }
        for index, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return _encode({"object": "list", "data": data, "model": model, "usage": usage})


def embeddings_answer(
    client_body: bytes, vectors: list[list[float]] | None, model: str, usage: Usage | None, upstream: str
) -> ParsedResponse:
    """The client's answer from the vectors another format's upstream returned (None: its 200 body
    was not an embeddings answer); one vector per input text, or the attempt failed."""
    _, texts = decode_embeddings_call(client_body)
    if vectors is None or len(vectors) != len(texts):
        got = (
            "an undecodable body" if vectors is None else f"{len(vectors)} embeddings for {len(texts)} inputs"
        )
        error = UpstreamError(
            FailureClass.UPSTREAM_5XX, f"{upstream} answered with {got}", upstream_status=200
        )
        return ParsedResponse(body=b"", usage=usage, error=error)
    tokens = usage.prompt_tokens if usage else 0
    return ParsedResponse(
        body=openai_embeddings_body(vectors, model, tokens, requested_encoding(client_body)), usage=usage
    )
