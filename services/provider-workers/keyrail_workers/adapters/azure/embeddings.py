"""Azure OpenAI embeddings (reference §7): OpenAI's embeddings body at the model's deployment,
`{endpoint}/openai/deployments/{deployment}/embeddings?api-version={v}` (or the v1 API's
`/openai/v1/embeddings` with `"model": <deployment>`); the answer is OpenAI's, passed through."""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_workers.adapters.azure.request import azure_request
from keyrail_workers.adapters.base import AdapterCall, Credential, UpstreamError, UpstreamRequest


def build_embeddings_request(call: AdapterCall, credential: Credential) -> UpstreamRequest | UpstreamError:
    payload: dict[str, Any] = msgspec.json.decode(call.body)
    return azure_request(call, credential, "embeddings", payload)
