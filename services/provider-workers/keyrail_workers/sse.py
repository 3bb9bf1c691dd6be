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
            parts.append(line[5:].lstrip(b" "))
    if parts:
        yield b"\n".join(parts)
