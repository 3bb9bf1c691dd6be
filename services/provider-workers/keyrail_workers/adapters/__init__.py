"""Adapters by wire-format name: the worker pools serve the ones listed here.

Which wire formats exist, and which are available in this version, is the provider registry's
data (`keyrail_common/providers.json`); a test keeps this table and the registry in step.
"""

from __future__ import annotations

from keyrail_workers.adapters.anthropic import AnthropicAdapter
from keyrail_workers.adapters.azure import AzureAdapter
from keyrail_workers.adapters.base import Adapter
from keyrail_workers.adapters.cohere import CohereAdapter
from keyrail_workers.adapters.gemini import GeminiAdapter
from keyrail_workers.adapters.openai import OpenAIAdapter
from keyrail_workers.adapters.vertex import VertexAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        OpenAIAdapter(),
        AnthropicAdapter(),
        GeminiAdapter(),
        VertexAdapter(),
        AzureAdapter(),
        CohereAdapter(),
    )
}
