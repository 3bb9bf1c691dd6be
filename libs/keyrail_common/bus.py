"""NATS connection and JetStream stream helpers shared by every service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from keyrail_common import subjects

log = logging.getLogger("keyrail.bus")

# Publisher-side deduplication window for activity events (Nats-Msg-Id).
_ACTIVITY_DUPLICATE_WINDOW_S = 120.0


async def connect(url: str, name: str, connect_timeout_s: float = 30.0) -> NATS:
    """Connect with unlimited reconnects: a restarted nats-server must not kill a service."""

    async def on_reconnect() -> None:
        log.warning("nats reconnected")

    async def on_error(exc: Exception) -> None:
        # One line per failed attempt instead of nats-py's default traceback.
        log.warning("nats error: %s: %s", type(exc).__name__, exc)

    deadline = asyncio.get_running_loop().time() + connect_timeout_s
    while True:
        nc = NATS()  # a fresh client per attempt: a failed connect leaves one closed
        try:
            await nc.connect(
                url,
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,  # type: ignore[arg-type]  # annotated int, used as seconds
                disconnected_cb=_disconnect_logger(nc),
                reconnected_cb=on_reconnect,
                error_cb=on_error,
                pending_size=64 * 1024 * 1024,
            )
            return nc
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def _disconnect_logger(nc: NATS) -> Callable[[], Awaitable[None]]:
    async def on_disconnect() -> None:
        # nats-py calls this on our own close and drain too: only losing the server is news.
        if not nc.is_closed:
            log.warning("nats disconnected")

    return on_disconnect


async def ensure_streams(js: JetStreamContext) -> None:
    """Create the two JetStream streams if they do not exist yet (idempotent, any service may call)."""
    wanted = [
        StreamConfig(
            name=subjects.CONFIG_STREAM,
            subjects=[subjects.CONFIG_SUBJECTS],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
        ),
        StreamConfig(
            name=subjects.ACTIVITY_STREAM,
            subjects=[subjects.ACTIVITY_SUBJECTS],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=_ACTIVITY_DUPLICATE_WINDOW_S,
            max_age=7 * 24 * 3600.0,
        ),
    ]
    for config in wanted:
        try:
            await js.stream_info(config.name or "")
        except Exception:
            try:
                await js.add_stream(config)
            except BadRequestError:
                # Another service created it between our check and our add.
                await js.stream_info(config.name or "")


async def close_bus(nc: NATS, timeout_s: float = 5.0) -> None:
    """Drain (finish in-flight messages) but never hang a shutdown on it."""
    try:
        await asyncio.wait_for(nc.drain(), timeout_s)
    except Exception:  # a timeout included
        await nc.close()
