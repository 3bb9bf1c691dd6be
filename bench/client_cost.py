"""CPU per upstream request: Keyrail's pooled HTTP/1.1 client against aiohttp and httpx.

`python -m bench.client_cost` pins itself to one CPU and the servers to another, sends the same
non-streaming chat request N times at concurrency 16 with each client, and prints the process CPU
per request. This is the measurement behind keyrail_workers/http_client.py.

Paths, each with every client (`--paths` to choose):
  http        plain HTTP to the mock upstream (the historical comparison)
  https       TLS to the mock upstream serving a certificate from a CA generated for the run
  https-proxy the same origin through a local CONNECT proxy (tests/support/proxy.py, its own
              process): one tunnel per pooled connection, keep-alive through it
Every client verifies the origin's certificate against that CA. The servers' CPU is not counted
(other processes); uvloop is the event loop, as in the worker. `--rounds` repeats the whole grid,
interleaved so that drift on the machine hits every client alike; the summary is the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx
import uvloop

from keyrail_workers.http_client import Proxy, ProxySettings, TlsOptions, UpstreamPool
from tests.support.stack import MockUpstream, free_port_block
from tests.support.tls import CertificateAuthority

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}).encode()
HEADERS = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
CLIENTS = ("keyrail", "aiohttp", "httpx")
PATHS = ("http", "https", "https-proxy")

One = Callable[[], Awaitable[bytes]]


async def _measure(one: One, total: int, concurrency: int) -> tuple[float, float]:
    """(CPU us per request, requests per second) after warming the client's pool."""
    await asyncio.gather(*(one() for _ in range(concurrency)))
    slots = asyncio.Semaphore(concurrency)

    async def limited() -> None:
        async with slots:
            await one()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(total)))
    return (time.process_time() - cpu) * 1e6 / total, total / (time.perf_counter() - wall)


class _Clients:
    """One long-lived client of each kind per path, as a worker would hold them."""

    def __init__(self, urls: dict[str, str], proxy_url: str, ca_pem: str) -> None:
        self.urls = urls
        self.proxy_url = proxy_url
        self.tls = TlsOptions(ca_bundle_pem=ca_pem)
        self.ssl = ssl.create_default_context(cadata=ca_pem)
        self.direct = UpstreamPool(proxies=ProxySettings())
        self.proxied = UpstreamPool(proxies=ProxySettings(https=Proxy.from_url(proxy_url)))
        self.aiohttp = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=self.ssl))
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        self.httpx = httpx.AsyncClient(verify=self.ssl, limits=limits)
        self.httpx_proxied = httpx.AsyncClient(verify=self.ssl, limits=limits, proxy=proxy_url)

    def one(self, client: str, path: str) -> One:
        url = self.urls[path]
        proxied = path == "https-proxy"
        tls = self.tls if url.startswith("https") else None
        if client == "keyrail":
            pool = self.proxied if proxied else self.direct

            async def keyrail() -> bytes:
                response = await pool.post(url, HEADERS, BODY, timeout_s=10, tls=tls)
                try:
                    return await response.read()
                finally:
                    response.release()

            return keyrail
        if client == "aiohttp":
            session, proxy = self.aiohttp, self.proxy_url if proxied else None

            async def aiohttp_client() -> bytes:
                async with session.post(url, data=BODY, headers=HEADERS, proxy=proxy) as response:
                    return await response.read()

            return aiohttp_client
        http = self.httpx_proxied if proxied else self.httpx

        async def httpx_client() -> bytes:
            response = await http.post(url, content=BODY, headers=HEADERS)
            return response.content

        return httpx_client

    async def close(self) -> None:
        self.direct.close()
        self.proxied.close()
        await self.aiohttp.close()
        await self.httpx.aclose()
        await self.httpx_proxied.aclose()


async def _run(
    urls: dict[str, str], proxy_url: str, ca_pem: str, args: argparse.Namespace
) -> dict[tuple[str, str], list[float]]:
    clients = _Clients(urls, proxy_url, ca_pem)
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for round_ in range(1, args.rounds + 1):
            for path in args.paths:
                for client in args.clients:
                    cpu_us, rate = await _measure(clients.one(client, path), args.requests, args.concurrency)
                    results.setdefault((path, client), []).append(cpu_us)
                    line = f"round {round_}  {path:12s} {client:8s} {cpu_us:5.0f} us CPU per request"
                    print(f"{line}, {rate:6.0f} req/s", flush=True)
        tunnels = sum(len(idle) for idle in clients.proxied._idle.values())
        if "https-proxy" in args.paths and "keyrail" in args.clients:
            print(f"keyrail via proxy: {tunnels} pooled tunnels after all rounds (at most the concurrency)")
    finally:
        await clients.close()
    return results


@contextmanager
def _proxy_process(cpus: str) -> Iterator[str]:
    port = free_port_block(1)
    command = ["taskset", "-c", cpus, sys.executable, "-m", "tests.support.proxy", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the benchmark proxy did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.client_cost", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--cpu", type=int, default=0, help="CPU for the clients")
    parser.add_argument("--upstream-cpus", default="1", help="CPUs for the mock upstreams and the proxy")
    args = parser.parse_args()

    ca = CertificateAuthority("Keyrail Bench CA")
    with tempfile.TemporaryDirectory(prefix="keyrail-bench-") as directory:
        cert, key = ca.server().write(Path(directory), "upstream")
        plain = MockUpstream(cpus=args.upstream_cpus).start()
        tls = MockUpstream(cpus=args.upstream_cpus, tls=(cert, key, ca.cert_pem)).start()
        try:
            with _proxy_process(args.upstream_cpus) as proxy_url:
                urls = {
                    "http": f"{plain.url}/chat/completions",
                    "https": f"{tls.url}/chat/completions",
                    "https-proxy": f"{tls.url.replace('127.0.0.1', 'localhost')}/chat/completions",
                }
                os.sched_setaffinity(0, {args.cpu})
                results = uvloop.run(_run(urls, proxy_url, ca.cert_pem, args))
        finally:
            plain.stop()
            tls.stop()

    print(
        f"\nmedian of {args.rounds} rounds, {args.requests} requests each at concurrency {args.concurrency}:"
    )
    print(f"{'':12s}" + "".join(f"{client:>10s}" for client in args.clients) + "   (us CPU per request)")
    for path in args.paths:
        row = "".join(f"{statistics.median(results[path, client]):10.0f}" for client in args.clients)
        print(f"{path:12s}{row}")


if __name__ == "__main__":
    main()
