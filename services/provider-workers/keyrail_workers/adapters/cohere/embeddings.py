"""OpenAI embeddings ↔ Cohere v2 `POST {base}/v2/embed` (reference §8).

The texts go as `texts` with `embedding_types: ["float"]`; OpenAI's `dimensions` is Cohere's
`output_dimension`. Cohere's embed v3 and later models require an `input_type`, which OpenAI's API
has no field for: a client sends it as an extra body field (`extra_body={"input_type": "search_query"}`),
and without one it is `search_document` (what a gateway mostly embeds: documents for an index).
The answer's `embeddings.float` are the vectors, `meta.billed_units.input_tokens` the usage.
"""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import (
    AdapterCall,
    Credential,
    ParsedResponse,
    UntranslatableRequest,
    UpstreamError,
    UpstreamRequest,
)
from keyrail_workers.adapters.cohere.request import cohere_headers
from keyrail_workers.adapters.openai.embeddings import decode_embeddings_call, embeddings_answer

DEFAULT_INPUT_TYPE = "search_document"


class _ByType(msgspec.Struct):
    floats: list[list[float]] | None = msgspec.field(default=None, name="float")


class _BilledUnits(msgspec.Struct):
    input_tokens: int = 0


class _Meta(msgspec.Struct):
    billed_units: _BilledUnits | None = None


class _EmbedResponse(msgspec.Struct):
    embeddings: _ByType | None = None
    meta: _Meta | None = None


_response_decoder = msgspec.json.Decoder(_EmbedResponse)
_encode = msgspec.json.Encoder().encode


def translate_embeddings(body: bytes, model: str) -> bytes:
    """The Cohere request body for the client's OpenAI embeddings body (raises UntranslatableRequest)."""
    call, texts = decode_embeddings_call(body)
    request: dict[str, Any] = {
        "model": model,
        "texts": texts,
        "input_type": call.input_type or DEFAULT_INPUT_TYPE,
        "embedding_types": ["float"],
    }
    if call.dimensions is not None:
        request["output_dimension"] = call.dimensions
    return _encode(request)


def build_embeddings_request(call: AdapterCall, credential: Credential) -> UpstreamRequest | UpstreamError:
    try:
        body = translate_embeddings(call.body, call.model)
    except UntranslatableRequest as exc:
        return UpstreamError(
            exc.failure_class, str(exc), provider_code="untranslatable_request", param=exc.param
        )
    return UpstreamRequest(
        method="POST",
        url=call.base_url.rstrip("/") + "/v2/embed",
        headers=cohere_headers(call, credential),
        body=body,
    )


def parse_embeddings_response(client_body: bytes, body: bytes, model: str) -> ParsedResponse:
    try:
        answer = _response_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return embeddings_answer(client_body, None, model, None, "the Cohere host")
    vectors = answer.embeddings.floats if answer.embeddings is not None else None
    billed = answer.meta.billed_units if answer.meta is not None else None
    usage = Usage(prompt_tokens=billed.input_tokens) if billed is not None else None
    return embeddings_answer(client_body, vectors, model, usage, "the Cohere host")
