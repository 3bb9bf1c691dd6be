"""A lean server-sent-events response for the data plane's streams.

Starlette's StreamingResponse runs every stream inside an anyio task group; this sends the head
and each chunk straight through ASGI and watches for the client leaving with one plain task,
which measurably shortens the time to the first chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


class SSEResponse:
    def __init__(self, frames: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        self._frames = frames
        self._headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        self._headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None

        async def cancel_on_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            streaming.cancel()

        watcher = asyncio.get_running_loop().create_task(cancel_on_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            async for chunk in self._frames:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not watcher.done():
                raise  # cancelled from outside (shutdown), not by the client leaving
            streaming.uncancel()  # the cancellation was ours and is handled: the task carries on
        finally:
            watcher.cancel()
            await self._frames.aclose()  # type: ignore[attr-defined]
