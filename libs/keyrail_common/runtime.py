"""What every service process shares: event loop, signals, health responder, metrics endpoint."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from prometheus_client import start_http_server

from keyrail_common import subjects


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` on uvloop; SIGINT/SIGTERM set `stop` so the service can drain and exit."""

    async def runner() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await main(stop)

    try:
        import uvloop

        uvloop.run(runner())
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        asyncio.run(runner())


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set `stop`. Call again after loading a library that installs its own handlers."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(sig)
        loop.add_signal_handler(sig, stop.set)


async def answer_health(nc: NATS, component: str) -> None:
    """Reply to `keyrail.health.<component>` pings; the ingress /healthz asks every component."""

    async def pong(msg: object) -> None:
        await msg.respond(b"ok")  # type: ignore[attr-defined]

    await nc.subscribe(subjects.health(component), cb=pong)


def start_metrics(port: int) -> None:
    """Prometheus text on http://127.0.0.1:<port>/metrics when a port is configured."""
    if port:
        start_http_server(port, addr="127.0.0.1")
