"""OpenAI embeddings ↔ Vertex AI's Google embedding models (provider reference §6.1).

Two methods, chosen by the model as python-genai chooses them (the reference's source):
- `:predict` for the text-embedding models (`text-embedding-005`, `text-multilingual-embedding-002`)
  and `gemini-embedding-001`: `{"instances": [{"content": <text>, "task_type"?: ...}, ...],
  "parameters": {"outputDimensionality"?: N}}`, one instance per text in the client's order,
  answered with `{"predictions": [{"embeddings": {"values": [...], "statistics": {"token_count": N,
  "truncated": false}}}], "metadata": {"billableCharacterCount": N}}`; the usage is the sum of the
  predictions' `token_count`.
- `:embedContent` for the newer Gemini embedding models (any other `gemini…` id): one text per
  request, `{"content": {"parts": [{"text": ...}]}, "embedContentConfig": {"taskType"?: ...,
  "outputDimensionality"?: N}}`, answered as AI Studio's embedContent is (`embedding.values`,
  `usageMetadata.promptTokenCount`), so the Gemini adapter's parser reads it.

OpenAI's `dimensions` is `outputDimensionality`. Vertex's task type (`RETRIEVAL_QUERY`,
`RETRIEVAL_DOCUMENT`, `SEMANTIC_SIMILARITY`, …) has no OpenAI field: a client sends it as the extra
body field `task_type` (openai SDK `extra_body`), passed on as given; without it Vertex's default.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import AdapterCall, ParsedResponse, UntranslatableRequest, UpstreamRequest
from keyrail_workers.adapters.gemini.embeddings import parse_embeddings_response as parse_embed_content
from keyrail_workers.adapters.openai.embeddings import decode_embeddings_call, embeddings_answer

PREDICT = "predict"
EMBED_CONTENT = "embedContent"
_UPSTREAM = "Vertex AI"


class _Statistics(msgspec.Struct):
    token_count: float = 0  # a number in JSON; Vertex has sent it as 6.0


class _Embeddings(msgspec.Struct):
    values: list[float]
    statistics: _Statistics | None = None


class _Prediction(msgspec.Struct):
    embeddings: _Embeddings


class _PredictResponse(msgspec.Struct):
    predictions: list[_Prediction]


_predict_decoder = msgspec.json.Decoder(_PredictResponse)
_encode = msgspec.json.Encoder().encode


def embeddings_method(model: str) -> str:
    """`embedContent` for the Gemini embedding models after gemini-embedding-001, else `predict`."""
    return EMBED_CONTENT if "gemini" in model and model != "gemini-embedding-001" else PREDICT


def translate_embeddings(body: bytes, model: str) -> bytes:
    """The Vertex request body for the client's OpenAI embeddings body (raises UntranslatableRequest)."""
    call, texts = decode_embeddings_call(body)
    if embeddings_method(model) == PREDICT:
        instances: list[dict[str, Any]] = [
            {"content": text, "task_type": call.task_type} if call.task_type else {"content": text}
            for text in texts
        ]
        payload: dict[str, Any] = {"instances": instances}
        if call.dimensions is not None:
            payload["parameters"] = {"outputDimensionality": call.dimensions}
        return _encode(payload)
    if len(texts) > 1:
        raise UntranslatableRequest(
            f"'input' holds {len(texts)} texts, but Vertex AI's {model} embeds one text per request: "
            "send one request per text.",
            param="input",
            failure_class=FailureClass.UNSUPPORTED,
        )
    config: dict[str, Any] = {}
    if call.task_type:
        config["taskType"] = call.task_type
    if call.dimensions is not None:
        config["outputDimensionality"] = call.dimensions
    request: dict[str, Any] = {"content": {"parts": [{"text": texts[0]}]}}
    if config:
        request["embedContentConfig"] = config
    return _encode(request)


def embeddings_request(call: AdapterCall, base: str, model: str, headers: dict[str, str]) -> UpstreamRequest:
    """The request to `{base}/models/{model}:{method}` (`base`: the publisher's path; raises
    UntranslatableRequest)."""
    return UpstreamRequest(
        method="POST",
        url=f"{base}/models/{quote(model, safe='@')}:{embeddings_method(model)}",
        headers=headers | {"Content-Type": "application/json", "Accept": "application/json"},
        body=translate_embeddings(call.body, model),
    )


def parse_embeddings_response(client_body: bytes, body: bytes, model: str) -> ParsedResponse:
    """The client's CreateEmbeddingResponse (`model`: the id the client's answer names)."""
    if embeddings_method(model.rpartition("/")[2]) == EMBED_CONTENT:
        return parse_embed_content(client_body, body, model, _UPSTREAM)
    try:
        answer = _predict_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return embeddings_answer(client_body, None, model, None, _UPSTREAM)
    vectors = [p.embeddings.values for p in answer.predictions]
    counted = [p.embeddings.statistics for p in answer.predictions if p.embeddings.statistics is not None]
    usage = Usage(prompt_tokens=int(sum(s.token_count for s in counted))) if counted else None
    return embeddings_answer(client_body, vectors, model, usage, _UPSTREAM)
