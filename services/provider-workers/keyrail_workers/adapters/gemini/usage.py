"""Gemini's `usageMetadata` → Keyrail's normalised usage, and that usage as OpenAI's `usage` object.

Gemini counts differently from OpenAI (§1.2): thoughts are reported beside the candidates, not
inside them, and prompt tokens spent on tool use beside the prompt. In OpenAI's semantics the
prompt includes both the cached content and the tool-use prompt, and the completion includes
the thoughts, with the cached and reasoning counts as subsets.
"""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_common.messages import Usage


class UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0  # includes cached content
    candidates_token_count: int = 0
    tool_use_prompt_token_count: int = 0
    thoughts_token_count: int = 0
    cached_content_token_count: int = 0

    def to_usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_token_count + self.tool_use_prompt_token_count,
            completion_tokens=self.candidates_token_count + self.thoughts_token_count,
            cached_tokens=self.cached_content_token_count,
            reasoning_tokens=self.thoughts_token_count,
        )


def openai_usage(usage: Usage) -> dict[str, Any]:
    """OpenAI's `usage` object (CompletionUsage) for a normalised usage."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
