"""Stream frames for every open stream of this ingress arrive on one wildcard subscription.

A subscription per stream would cost a SUB and an UNSUB round through nats-server and a
nats-py subscription object for each request; here a stream is a queue in a dict.
"""

from __future__ import annotations

import asyncio
import itertools

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg


class StreamInboxes:
    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._prefix = nc.new_inbox()
        self._queues: dict[str, asyncio.Queue[bytes]] = {}
        self._ids = itertools.count()

    async def start(self) -> None:
        await self._nc.subscribe(f"{self._prefix}.*", cb=self._deliver)

    async def _deliver(self, msg: Msg) -> None:
        queue = self._queues.get(msg.subject)
        if queue is not None:  # frames of a stream the client already left are dropped
            queue.put_nowait(msg.data)

    def open(self) -> tuple[str, asyncio.Queue[bytes]]:
        inbox = f"{self._prefix}.{next(self._ids)}"
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._queues[inbox] = queue
        return inbox, queue

    def close(self, inbox: str) -> None:
        self._queues.pop(inbox, None)
