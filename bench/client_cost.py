"""CPU per upstream request: Keyrail's pooled HTTP/1.1 client against aiohttp's ClientSession.

`python -m bench.client_cost` pins itself to one CPU and the mock upstream to another, sends the
same non-streaming chat request N times at concurrency 16 with each client, and prints the
process CPU per request. This is the measurement behind keyrail_workers/http_client.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable

import aiohttp
import uvloop

from keyrail_workers.http_client import UpstreamPool
from tests.support.stack import MockUpstream

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}).encode()
HEADERS = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}


async def _measure(name: str, one: Callable[[], Awaitable[bytes]], total: int, concurrency: int) -> str:
    await asyncio.gather(*(one() for _ in range(concurrency)))  # warm the pools
    slots = asyncio.Semaphore(concurrency)

    async def limited() -> None:
        async with slots:
            await one()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(total)))
    per_request_us = (time.process_time() - cpu) * 1e6 / total
    rate = total / (time.perf_counter() - wall)
    return f"{name:10s} {per_request_us:5.0f} us CPU per request, {rate:6.0f} req/s"


async def _run(url: str, total: int, concurrency: int) -> None:
    pool = UpstreamPool()

    async def keyrail_client() -> bytes:
        response = await pool.post(url, HEADERS, BODY, timeout_s=10)
        try:
            return await response.read()
        finally:
            response.release()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def aiohttp_client() -> bytes:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                return await response.read()

        for name, one in (("keyrail", keyrail_client), ("aiohttp", aiohttp_client)) * 2:
            print(await _measure(name, one, total, concurrency), flush=True)
    pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.client_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cpu", type=int, default=0, help="CPU for the clients")
    parser.add_argument("--upstream-cpus", default="1")
    args = parser.parse_args()
    upstream = MockUpstream(cpus=args.upstream_cpus).start()
    os.sched_setaffinity(0, {args.cpu})
    try:
        uvloop.run(_run(f"{upstream.url}/chat/completions", args.requests, args.concurrency))
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
