"""Server-sent events framing: split an upstream byte stream into `data:` payloads."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

DONE = b"[DONE]"


async def sse_data(lines: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Yield each event's data (multi-line data joined by newlines); comments and other fields skipped."""
    parts: list[bytes] = []
    async for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line:
            if parts:
                yield b"\n".join(parts)
                parts = []
            continue
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(
                value[1:] if value.startswith(b" ") else value
            )  # exactly one space, per the SSE spec
    if parts:
        yield b"\n".join(parts)
