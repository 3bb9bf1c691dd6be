"""The floor under Keyrail's per-hop cost: one nats-py request/reply between two processes.

`python -m bench.nats_roundtrip` starts nats-server and a responder pinned to one CPU, like the
gateway in bench.run, and reports round trips per second and the requester's CPU per round
trip at concurrency 1 and 16. Keyrail's path is three such messages plus HTTP in and out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import nats
import uvloop
from nats.aio.msg import Msg

from keyrail_cli.embedded_nats import nats_server_binary
from tests.support.stack import free_port_block

PAYLOAD = b"x" * 300


async def _respond(url: str) -> None:
    nc = await nats.connect(url)

    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)

    await nc.subscribe("bench.echo", cb=echo)
    await asyncio.Event().wait()


async def _measure(url: str, total: int, concurrency: int) -> str:
    nc = await nats.connect(url)
    for _ in range(200):
        await nc.request("bench.echo", PAYLOAD, timeout=5)
    cpu, wall = time.process_time(), time.perf_counter()

    async def loop(count: int) -> None:
        for _ in range(count):
            await nc.request("bench.echo", PAYLOAD, timeout=5)

    await asyncio.gather(*(loop(total // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - wall
    await nc.close()
    return (
        f"concurrency {concurrency:2d}: {total / elapsed:7.0f} round trips/s, requester CPU "
        f"{(time.process_time() - cpu) * 1e6 / total:4.0f} us per round trip, "
        f"latency {elapsed * 1e6 * concurrency / total:5.0f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nats_roundtrip", description=__doc__)
    parser.add_argument("--cpus", default="0")
    parser.add_argument("--role", choices=["responder"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "responder":
        uvloop.run(_respond(args.url))
        return
    port = free_port_block(1)
    url = f"nats://127.0.0.1:{port}"
    server = subprocess.Popen(
        ["taskset", "-c", args.cpus, nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    responder = subprocess.Popen(
        [
            "taskset",
            "-c",
            args.cpus,
            sys.executable,
            "-m",
            "bench.nats_roundtrip",
            "--role",
            "responder",
            "--url",
            url,
        ]
    )
    time.sleep(1.0)
    try:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
        for concurrency, total in ((1, 3000), (16, 8000)):
            print(uvloop.run(_measure(url, total, concurrency)), flush=True)
    finally:
        responder.terminate()
        server.terminate()


if __name__ == "__main__":
    main()
