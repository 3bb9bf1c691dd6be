"""The OpenAI wire format (chat completions, embeddings): OpenAI and every OpenAI-compatible provider.

Providers differ only in data (base URL, auth header, rejected parameters: the registry's
quirks), so one adapter serves them all; an OpenAI-dialect client gets the upstream's bytes.
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
from keyrail_workers.adapters.openai.embeddings import build_embeddings_request
from keyrail_workers.adapters.openai.errors import classify_error
from keyrail_workers.adapters.openai.request import build_chat_request
from keyrail_workers.adapters.openai.response import parse_chat_response
from keyrail_workers.adapters.openai.stream import OpenAIStreamTranslator


class OpenAIAdapter:
    name = "openai"
    dialects = frozenset({Dialect.OPENAI})
    operations = frozenset({Operation.CHAT, Operation.EMBEDDINGS})

    def build_request(self, call: AdapterCall, credential: Credential) -> UpstreamRequest:
        if call.operation is Operation.EMBEDDINGS:
            return build_embeddings_request(call, credential)
        return build_chat_request(call, credential)

    def parse_response(self, call: AdapterCall, body: bytes) -> ParsedResponse:
        return parse_chat_response(call, body)

    def stream_translator(self, call: AdapterCall, request: UpstreamRequest) -> OpenAIStreamTranslator:
        return OpenAIStreamTranslator(request.client_wants_usage, call.quirks.usage_envelope)

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
