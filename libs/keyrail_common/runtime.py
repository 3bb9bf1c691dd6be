"""What every service process shares: event loop, signals, health responder, metrics endpoint."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from prometheus_client import start_http_server

from keyrail_common import subjects

log = logging.getLogger("keyrail.runtime")

# In-flight requests get this long to finish on shutdown (the supervisor's grace period is 10 s).
DRAIN_S = 8.0


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


async def answer_health(nc: NATS, component: str, detail: Callable[[], bytes] | None = None) -> None:
    """Reply to `keyrail.health.<component>` pings; the ingress /healthz asks every component.
    `detail`: a JSON object the component reports about itself instead of `ok` (shown, never a
    reason to be unready)."""

    async def pong(msg: object) -> None:
        await msg.respond(detail() if detail else b"ok")  # type: ignore[attr-defined]

    await nc.subscribe(subjects.health(component), cb=pong)


def start_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Prometheus text on http://<host>:<port>/metrics when a port is configured."""
    if port:
        start_http_server(port, addr=host)


class ConcurrentHandler:
    """Runs a subscription's messages concurrently.

    nats-py awaits a subscription callback before it delivers the next message, so a handler that
    waits on an upstream would serve one request at a time. This starts a task per message, up to
    `limit` in flight (then the callback waits: backpressure into the subscription's pending queue).
    """

    def __init__(self, handler: Callable[[Msg], Awaitable[None]], limit: int = 1024) -> None:
        self._handler = handler
        self._slots = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()

    async def dispatch(self, msg: Msg) -> None:
        await self._slots.acquire()
        task = asyncio.get_running_loop().create_task(self._run(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, msg: Msg) -> None:
        try:
            await self._handler(msg)
        except Exception:
            log.exception("handler failed on %s", msg.subject)
        finally:
            self._slots.release()

    async def wait_idle(self, timeout_s: float) -> None:
        """Let in-flight messages finish (shutdown), at most `timeout_s`."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
