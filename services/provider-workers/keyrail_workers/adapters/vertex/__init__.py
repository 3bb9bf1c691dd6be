"""Google Vertex AI (provider reference §6): Gemini and Claude models behind a service account.

What is Vertex's own is small and lives here: the OAuth2 token exchange (auth.py; the runner
caches tokens with token_cache.py), where a request goes (request.py) and the `:predict` embeddings
(embeddings.py). The chat bodies are the Gemini adapter's for Google's models and the Anthropic
adapter's for Claude: requests, responses, streams and errors are translated by their functions,
not copies of them.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation
from keyrail_workers.adapters import anthropic, gemini
from keyrail_workers.adapters.base import (
    AccessToken,
    AdapterCall,
    Credential,
    ParsedResponse,
    StreamTranslator,
    UpstreamError,
    UpstreamRequest,
)
from keyrail_workers.adapters.vertex import auth
from keyrail_workers.adapters.vertex.embeddings import parse_embeddings_response
from keyrail_workers.adapters.vertex.request import ANTHROPIC, build_vertex_request, publisher_of

_ANTHROPIC = anthropic.AnthropicAdapter()
_GEMINI = gemini.GeminiAdapter()


class _ErrorShape(msgspec.Struct):
    type: str = ""  # "error" in Anthropic's envelope; Google's google.rpc.Status has none


_error_shape = msgspec.json.Decoder(_ErrorShape)


def _speaks_anthropic(body: bytes) -> bool:
    try:
        return _error_shape.decode(body).type == "error"
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


class VertexAdapter:
    name = "vertex"
    dialects = frozenset({Dialect.OPENAI})
    operations = frozenset({Operation.CHAT, Operation.EMBEDDINGS})

    def _body_format(self, call: AdapterCall) -> anthropic.AnthropicAdapter | gemini.GeminiAdapter:
        return _ANTHROPIC if publisher_of(call.model)[0] == ANTHROPIC else _GEMINI

    def build_request(self, call: AdapterCall, credential: Credential) -> UpstreamRequest | UpstreamError:
        return build_vertex_request(call, credential)

    def parse_response(self, call: AdapterCall, body: bytes) -> ParsedResponse:
        if call.operation is Operation.EMBEDDINGS:
            return parse_embeddings_response(call.body, body, call.model)
        return self._body_format(call).parse_response(call, body)

    def stream_translator(self, call: AdapterCall, request: UpstreamRequest) -> StreamTranslator:
        return self._body_format(call).stream_translator(call, request)

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        # Claude's errors are Anthropic's, except those Google's front end answers itself (401, 429).
        if _speaks_anthropic(body):
            return _ANTHROPIC.classify_error(status, headers, body)
        return _GEMINI.classify_error(status, headers, body)

    def token_request(self, credential: Credential, now_s: float) -> UpstreamRequest | UpstreamError:
        return auth.token_request(credential, now_s)

    def parse_token_response(self, status: int, body: bytes) -> AccessToken | UpstreamError:
        return auth.parse_token_response(status, body)
