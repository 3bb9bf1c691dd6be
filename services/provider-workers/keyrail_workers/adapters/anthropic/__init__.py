"""The Anthropic Messages wire format (reference §4): Anthropic itself, and any custom host that
speaks it. OpenAI-dialect clients are answered in OpenAI's format: requests, responses, streams
and errors are translated here, as pure functions over bytes."""

from __future__ import annotations

from collections.abc import Mapping

from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation
from keyrail_workers.adapters.anthropic.errors import classify_error
from keyrail_workers.adapters.anthropic.request import build_messages_request
from keyrail_workers.adapters.anthropic.response import parse_messages_response
from keyrail_workers.adapters.anthropic.stream import AnthropicStreamTranslator
from keyrail_workers.adapters.base import (
    AdapterCall,
    Credential,
    ParsedResponse,
    UpstreamError,
    UpstreamRequest,
)


class AnthropicAdapter:
    name = "anthropic"
    dialects = frozenset({Dialect.OPENAI})
    operations = frozenset({Operation.CHAT})

    def build_request(self, call: AdapterCall, credential: Credential) -> UpstreamRequest:
        return build_messages_request(call, credential)

    def parse_response(self, call: AdapterCall, body: bytes) -> ParsedResponse:
        return parse_messages_response(call, body)

    def stream_translator(self, call: AdapterCall, request: UpstreamRequest) -> AnthropicStreamTranslator:
        return AnthropicStreamTranslator(call.model, request.client_wants_usage)

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
