"""Server-sent events framing: split an upstream byte stream into (event name, data) pairs."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator


async def sse_events(lines: AsyncIterable[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """Yield each event's `event:` name ("" when none) and data (multi-line data joined by newlines);
    comments, ids and retry fields are skipped."""
    parts: list[bytes] = []
    event = ""
    async for raw in lines:
        line = raw.rstrip(b"\r\n")
        if not line:
            if parts:
                yield event, b"\n".join(parts)
                parts = []
            event = ""
            continue
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(
                value[1:] if value.startswith(b" ") else value
            )  # exactly one space, per the SSE spec
        elif line.startswith(b"event:"):
            value = line[6:]
            event = (value[1:] if value.startswith(b" ") else value).decode(errors="replace")
    if parts:
        yield event, b"\n".join(parts)
