"""Azure OpenAI: OpenAI's chat-completions and embeddings wire format at a customer's own deployments.

Only the URL and the auth header differ from OpenAI (request.py, embeddings.py); the body, the response, the
stream and the error envelope are OpenAI's, so those are the OpenAI adapter's own functions.
"""

from __future__ import annotations

from collections.abc import Mapping

from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation
from keyrail_workers.adapters.azure.embeddings import build_embeddings_request
from keyrail_workers.adapters.azure.request import build_azure_request
from keyrail_workers.adapters.base import (
    AdapterCall,
    Credential,
    ParsedResponse,
    UpstreamError,
    UpstreamRequest,
)
from keyrail_workers.adapters.openai.errors import classify_error
from keyrail_workers.adapters.openai.response import parse_chat_response
from keyrail_workers.adapters.openai.stream import OpenAIStreamTranslator


class AzureAdapter:
    name = "azure"
    dialects = frozenset({Dialect.OPENAI})
    operations = frozenset({Operation.CHAT, Operation.EMBEDDINGS})

    def build_request(self, call: AdapterCall, credential: Credential) -> UpstreamRequest | UpstreamError:
        if call.operation is Operation.EMBEDDINGS:
            return build_embeddings_request(call, credential)
        return build_azure_request(call, credential)

    def parse_response(self, call: AdapterCall, body: bytes) -> ParsedResponse:
        return parse_chat_response(call, body)

    def stream_translator(self, call: AdapterCall, request: UpstreamRequest) -> OpenAIStreamTranslator:
        return OpenAIStreamTranslator(request.client_wants_usage)

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
