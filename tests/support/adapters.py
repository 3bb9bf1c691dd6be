"""Helpers for adapter contract tests: feed an upstream SSE body to a translator as the relay does."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterable
from typing import Any

from keyrail_common.registry import Quirks
from keyrail_workers.adapters.base import StreamStep, StreamTranslator
from keyrail_workers.sse import sse_events


async def _lines(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def sse_pairs(raw: bytes) -> list[tuple[str, bytes]]:
    """The (event name, data) pairs of an SSE body, as the relay reads them."""
    return [pair async for pair in sse_events(_lines(raw.splitlines(keepends=True)))]


async def feed(raw: bytes, translator: StreamTranslator) -> list[StreamStep]:
    """Every step until an error or the terminal event, as `StreamRelay.run` reads them."""
    steps: list[StreamStep] = []
    for event, data in await sse_pairs(raw):
        step = translator.feed(event, data)
        steps.append(step)
        if step.error is not None or step.done:
            break
    return steps


def frames(steps: list[StreamStep]) -> list[bytes]:
    return [frame for step in steps for frame in step.frames]


def data_lines(raw: bytes) -> list[bytes]:
    """The `data:` payloads of an SSE body."""
    return [line[len(b"data: ") :] for line in raw.splitlines() if line.startswith(b"data: ")]


def expected_openai_body(
    original: dict[str, Any], quirks: Quirks, model: str, stream: bool
) -> dict[str, Any]:
    """What the registry's quirks say an OpenAI-format upstream must receive for a client body."""
    expected = copy.deepcopy(original)
    expected["model"] = model
    for param in quirks.drop_params:
        expected.pop(param, None)
    for prefix, params in quirks.model_drop_params.items():
        if model.startswith(prefix):
            for param in params:
                expected.pop(param, None)
    if quirks.temperature_range is not None and "temperature" in expected:
        low, high = quirks.temperature_range
        expected["temperature"] = min(max(expected["temperature"], low), high)
    for message in expected.get("messages", []):
        for field in quirks.drop_message_fields:
            message.pop(field, None)
    if stream and quirks.stream_usage:
        expected["stream_options"] = {**(original.get("stream_options") or {}), "include_usage": True}
    return expected
