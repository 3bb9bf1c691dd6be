"""The official `openai` SDK against the stack's data plane, as end-to-end tests use it."""

from __future__ import annotations

import openai
from openai.types.chat import ChatCompletionChunk

from tests.support.stack import KeyrailStack


def sdk_client(stack: KeyrailStack, api_key: str) -> openai.OpenAI:
    """No SDK retries: a test sees the gateway's first answer."""
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=api_key, max_retries=0)


def sdk_stream(client: openai.OpenAI, model: str, prompt: str) -> tuple[list[ChatCompletionChunk], str]:
    """A streamed chat completion asking for usage: every chunk, and the request id."""
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    return list(raw.parse()), raw.headers["x-keyrail-request-id"]
