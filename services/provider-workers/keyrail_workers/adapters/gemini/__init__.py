"""Google AI Studio's Gemini API (`generateContent`), answered in the OpenAI dialect.

The body translation (request.py, response.py, stream.py, errors.py) is Gemini's and pure; what
is AI Studio's is only where the request goes and how it authenticates, in `model_url` (with
`chat_url` and `embeddings_url` over it) and `auth_headers`. A Vertex AI adapter serves Gemini
models with the same bodies by overriding those. The key goes in the `x-goog-api-key` header,
never in the URL (`?key=` would end up in access logs on the way).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from urllib.parse import quote

from keyrail_common.messages import Dialect
from keyrail_common.registry import Operation
from keyrail_workers.adapters.base import (
    AdapterCall,
    Credential,
    ParsedResponse,
    UntranslatableRequest,
    UpstreamError,
    UpstreamRequest,
)
from keyrail_workers.adapters.gemini.embeddings import (
    embeddings_method,
    parse_embeddings_response,
    translate_embeddings,
)
from keyrail_workers.adapters.gemini.errors import classify_error
from keyrail_workers.adapters.gemini.request import translate_chat
from keyrail_workers.adapters.gemini.response import parse_chat_response
from keyrail_workers.adapters.gemini.stream import GeminiStreamTranslator


class GeminiRequest(UpstreamRequest):
    candidates: int = 1  # the stream is complete when this many candidates finished


class GeminiAdapter:
    name = "gemini"
    dialects = frozenset({Dialect.OPENAI})
    operations = frozenset({Operation.CHAT, Operation.EMBEDDINGS})

    def model_url(self, call: AdapterCall, method: str) -> str:
        model = quote(call.model.removeprefix("models/"), safe="")
        return f"{call.base_url.rstrip('/')}/models/{model}:{method}"

    def chat_url(self, call: AdapterCall) -> str:
        return self.model_url(call, "streamGenerateContent?alt=sse" if call.stream else "generateContent")

    def embeddings_url(self, call: AdapterCall, method: str) -> str:
        return self.model_url(call, method)

    def auth_headers(self, credential: Credential) -> dict[str, str]:
        api_key = credential.get("api_key")
        return {"x-goog-api-key": api_key} if isinstance(api_key, str) and api_key else {}

    def build_request(
        self, call: AdapterCall, credential: Credential
    ) -> GeminiRequest | UpstreamRequest | UpstreamError:
        try:
            if call.operation is Operation.EMBEDDINGS:
                return self._embeddings_request(call, credential)
            chat = translate_chat(call.body, call.model)
        except UntranslatableRequest as exc:
            return UpstreamError(
                exc.failure_class, str(exc), provider_code="untranslatable_request", param=exc.param
            )
        headers = self._headers(call, credential)
        return GeminiRequest(
            method="POST",
            url=self.chat_url(call),
            headers=headers,
            body=chat.body,
            client_wants_usage=chat.client_wants_usage,
            candidates=chat.candidates,
        )

    def _headers(self, call: AdapterCall, credential: Credential) -> dict[str, str]:
        headers = {**call.custom_headers, **self.auth_headers(credential)}
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "text/event-stream" if call.stream else "application/json"
        return headers

    def _embeddings_request(self, call: AdapterCall, credential: Credential) -> UpstreamRequest:
        return UpstreamRequest(
            method="POST",
            url=self.embeddings_url(call, embeddings_method(call.body)),
            headers=self._headers(call, credential),
            body=translate_embeddings(call.body, call.model),
        )

    def parse_response(self, call: AdapterCall, body: bytes) -> ParsedResponse:
        if call.operation is Operation.EMBEDDINGS:
            return parse_embeddings_response(call.body, body, call.model)
        return parse_chat_response(body, call.model, int(time.time()))

    def stream_translator(self, call: AdapterCall, request: UpstreamRequest) -> GeminiStreamTranslator:
        candidates = request.candidates if isinstance(request, GeminiRequest) else 1
        return GeminiStreamTranslator(call.model, request.client_wants_usage, candidates)

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
