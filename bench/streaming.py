"""Streaming load: time to first byte, to first content token, and total, per stream."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp
import msgspec


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []


_decode_chunk = msgspec.json.Decoder(_Chunk).decode


class StreamTimes(msgspec.Struct):
    ttfb_ms: float
    ttft_ms: float
    total_ms: float


class StreamStats(msgspec.Struct):
    streams: int
    errors: int
    ttfb_p50_ms: float
    ttft_p50_ms: float
    ttft_p90_ms: float
    ttft_p99_ms: float
    total_p50_ms: float


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


async def _one(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> StreamTimes:
    started = time.perf_counter()
    ttfb = ttft = 0.0
    async with session.post(url, json=body, headers=headers) as response:
        response.raise_for_status()
        ttfb = time.perf_counter() - started
        async for line in response.content:
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            if not ttft and any(c.delta and c.delta.content for c in _decode_chunk(data).choices):
                ttft = time.perf_counter() - started
    return StreamTimes(ttfb * 1000, ttft * 1000, (time.perf_counter() - started) * 1000)


async def run_streams(
    url: str, body: dict[str, Any], api_key: str | None, concurrency: int, total: int
) -> StreamStats:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    times: list[StreamTimes] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while not queue.empty():
            queue.get_nowait()
            try:
                times.append(await _one(session, url, body, headers))
            except (aiohttp.ClientError, TimeoutError):
                errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    ttft = [t.ttft_ms for t in times]
    return StreamStats(
        streams=len(times),
        errors=errors,
        ttfb_p50_ms=statistics.median([t.ttfb_ms for t in times]) if times else 0.0,
        ttft_p50_ms=percentile(ttft, 50),
        ttft_p90_ms=percentile(ttft, 90),
        ttft_p99_ms=percentile(ttft, 99),
        total_p50_ms=statistics.median([t.total_ms for t in times]) if times else 0.0,
    )
