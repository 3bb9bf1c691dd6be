"""Helpers for adapter contract tests: feed an upstream SSE body to a translator as the relay does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from keyrail_workers.adapters.base import StreamStep, StreamTranslator
from keyrail_workers.sse import sse_events


async def _lines(items: Iterable[bytes]) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def feed(raw: bytes, translator: StreamTranslator) -> list[StreamStep]:
    """Every step until an error or the terminal event, as `StreamRelay.run` reads them."""
    steps: list[StreamStep] = []
    async for event, data in sse_events(_lines(raw.splitlines(keepends=True))):
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
