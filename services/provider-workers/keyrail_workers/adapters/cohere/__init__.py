"""The Cohere v2 wire format (chat `POST /v2/chat`, embeddings `POST /v2/embed`), for
Cohere-compatible custom hosts: any integration with a custom host may declare
`api_format: "cohere"` (reference §8).

The client speaks OpenAI; every body is translated both ways (request.py, response.py,
stream.py, embeddings.py), and errors are classified from Cohere's status codes (errors.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation
from keyrail_workers.adapters.base import (
    AdapterCall,
    Credential,
    ParsedResponse,
    UpstreamError,
    UpstreamRequest,
)
from keyrail_workers.adapters.cohere.embeddings import build_embeddings_request, parse_embeddings_response
from keyrail_workers.adapters.cohere.errors import classify_error
from keyrail_workers.adapters.cohere.request import build_cohere_request
from keyrail_workers.adapters.cohere.response import parse_cohere_response
from keyrail_workers.adapters.cohere.stream import CohereStreamTranslator


class CohereAdapter:
    name = "cohere"
    dialects = frozenset({Dialect.OPENAI})
    operations = frozenset({Operation.CHAT, Operation.EMBEDDINGS})

    def build_request(self, call: AdapterCall, credential: Credential) -> UpstreamRequest | UpstreamError:
        if call.operation is Operation.EMBEDDINGS:
            return build_embeddings_request(call, credential)
        return build_cohere_request(call, credential)

    def parse_response(self, call: AdapterCall, body: bytes) -> ParsedResponse:
        if call.operation is Operation.EMBEDDINGS:
            return parse_embeddings_response(call.body, body, call.model)
        return parse_cohere_response(call, body)

    def stream_translator(self, call: AdapterCall, request: UpstreamRequest) -> CohereStreamTranslator:
        return CohereStreamTranslator(call.model, request.client_wants_usage)

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
