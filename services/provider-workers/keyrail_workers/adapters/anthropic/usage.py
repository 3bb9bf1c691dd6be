"""Anthropic's `usage` → Keyrail's normalised usage, and normalised usage → OpenAI's `usage` object.

Anthropic's `input_tokens` excludes cache reads and writes; OpenAI's `prompt_tokens` includes
them (reference §1.2), so the prompt is the sum of the three and the cache counts are its subsets.
`output_tokens` already includes thinking, which Anthropic breaks out in
`output_tokens_details.thinking_tokens` (newer API) like OpenAI's `reasoning_tokens`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_common.messages import Usage


class _OutputDetails(msgspec.Struct):
    thinking_tokens: int | None = None


class WireUsage(msgspec.Struct):
    """Every field may be absent or null: a stream's `message_delta` repeats only some of them."""

    input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens: int | None = None
    output_tokens_details: _OutputDetails | None = None

    def updated(self, later: WireUsage) -> WireUsage:
        """These counts with those `later` reports (message_delta's cumulative counts win)."""
        return WireUsage(
            input_tokens=_later(self.input_tokens, later.input_tokens),
            cache_creation_input_tokens=_later(
                self.cache_creation_input_tokens, later.cache_creation_input_tokens
            ),
            cache_read_input_tokens=_later(self.cache_read_input_tokens, later.cache_read_input_tokens),
            output_tokens=_later(self.output_tokens, later.output_tokens),
            output_tokens_details=later.output_tokens_details or self.output_tokens_details,
        )

    def to_usage(self) -> Usage:
        cache_write = self.cache_creation_input_tokens or 0
        cache_read = self.cache_read_input_tokens or 0
        details = self.output_tokens_details
        return Usage(
            prompt_tokens=(self.input_tokens or 0) + cache_write + cache_read,
            completion_tokens=self.output_tokens or 0,
            cached_tokens=cache_read,
            reasoning_tokens=(details.thinking_tokens or 0) if details else 0,
            cache_write_tokens=cache_write,
        )


def _later(earlier: int | None, later: int | None) -> int | None:
    return earlier if later is None else later


def openai_usage(usage: Usage) -> dict[str, Any]:
    """The OpenAI `usage` object (CompletionUsage) of normalised usage."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
