"""One structured JSON line per request, cheap enough for the hot path.

Lines are buffered in memory and written by a background task every 100 ms (or when the buffer
is large), so a request never waits on stderr. Callers pass only identifiers and numbers, never
bodies or headers, so no secret can reach the log.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import msgspec

_FLUSH_INTERVAL_S = 0.1
_FLUSH_BYTES = 64 * 1024


class AccessLog:
    def __init__(self, service: str, enabled: bool = True) -> None:
        self._service = service
        self._enabled = enabled
        self._buffer: list[bytes] = []
        self._size = 0
        self._encode = msgspec.json.Encoder().encode
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    def line(self, **fields: Any) -> None:
        if not self._enabled:
            return
        fields["ts"] = round(time.time(), 3)
        fields["service"] = self._service
        encoded = self._encode(fields) + b"\n"
        self._buffer.append(encoded)
        self._size += len(encoded)
        if self._size >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            sys.stderr.buffer.write(b"".join(self._buffer))
            sys.stderr.buffer.flush()
            self._buffer.clear()
            self._size = 0

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_INTERVAL_S)
            self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.flush()
