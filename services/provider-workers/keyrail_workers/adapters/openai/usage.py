"""OpenAI's `usage` object → Keyrail's normalised usage (cached and reasoning tokens are subsets)."""

from __future__ import annotations

import msgspec

from keyrail_common.messages import Usage


class _PromptDetails(msgspec.Struct):
    cached_tokens: int = 0


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class WireUsage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None
    reasoning_tokens: int = 0  # Perplexity's, beside the completion tokens instead of inside details

    def to_usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cached_tokens=self.prompt_tokens_details.cached_tokens if self.prompt_tokens_details else 0,
            reasoning_tokens=(
                self.completion_tokens_details.reasoning_tokens
                if self.completion_tokens_details
                else self.reasoning_tokens
            ),
        )
