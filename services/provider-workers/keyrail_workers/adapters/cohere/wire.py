"""What Cohere v2 answers and streams share (reference §1.1, §1.2, §8): usage, finish reasons,
tool calls, and the OpenAI shapes they become."""

from __future__ import annotations

from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage
from keyrail_workers.adapters.base import UpstreamError

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
# A generation that failed is an error, not a choice: ERROR a server error (502), TIMEOUT a 504.
FAILED_GENERATIONS = {"ERROR": FailureClass.UPSTREAM_5XX, "TIMEOUT": FailureClass.TIMEOUT}


class _Tokens(msgspec.Struct):
    input_tokens: float = 0  # the SDK types these as numbers, not integers
    output_tokens: float = 0


class WireUsage(msgspec.Struct):
    tokens: _Tokens | None = None  # everything the model read and wrote: what OpenAI's usage means
    billed_units: _Tokens | None = None  # fewer: template tokens are not billed
    cached_tokens: float = 0

    def to_usage(self) -> Usage | None:
        counted = self.tokens or self.billed_units  # billed units only where a host sends no tokens
        if counted is None:
            return None
        return Usage(
            prompt_tokens=round(counted.input_tokens),
            completion_tokens=round(counted.output_tokens),
            cached_tokens=round(self.cached_tokens),
        )


def openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


class WireFunction(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class WireToolCall(msgspec.Struct):
    id: str | None = None
    function: WireFunction | None = None


def openai_tool_call(call: WireToolCall) -> dict[str, Any]:
    function = call.function or WireFunction()
    return {
        "id": call.id or "",
        "type": "function",
        "function": {"name": function.name or "", "arguments": function.arguments or ""},
    }


def finish_reason(reason: str | None, error: str | None = None) -> str | UpstreamError:
    """OpenAI's finish_reason, or the failure a failed generation is (with Cohere's own words)."""
    failed = FAILED_GENERATIONS.get(reason or "")
    if failed is not None:
        said = f": {error}" if error else ""
        return UpstreamError(
            failed,
            f"Cohere ended the generation with finish_reason {reason}{said}",
            provider_code=reason or "",
        )
    return FINISH_REASONS.get(reason or "", "stop")  # an unknown reason still ends the choice
