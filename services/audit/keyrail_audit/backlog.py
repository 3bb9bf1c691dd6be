"""The ingestion backlog: activity messages JetStream holds that ClickHouse does not have yet.

Polled from the durable consumer's state (pending plus delivered-but-unacknowledged), exported as
a gauge and reported in the audit service's health answer, which the ingress shows in `/healthz`
detail. A backlog never makes the gateway unready: requests keep being served and their rows wait
in JetStream while ClickHouse is slow or down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from nats.js import JetStreamContext

from keyrail_audit.metrics import BACKLOG_MESSAGES
from keyrail_audit.store import StoreState
from keyrail_common import subjects

log = logging.getLogger("keyrail.audit")

POLL_S = 2.0


class AuditHealth(msgspec.Struct):
    """What the audit service says about itself in its health answer."""

    backlog: int  # activity messages not yet written to ClickHouse (-1: not known yet)
    store: StoreState  # not "ok": ClickHouse cannot be written, the rows wait in JetStream


class Backlog:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self.messages = -1

    async def poll(self) -> None:
        info = await self._js.consumer_info(subjects.ACTIVITY_STREAM, subjects.AUDIT_DURABLE)
        self.messages = (info.num_pending or 0) + (info.num_ack_pending or 0)
        BACKLOG_MESSAGES.set(self.messages)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll()
            except Exception as exc:  # NATS reconnecting, the consumer not created yet: try again
                log.debug("backlog poll failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_S)


health_encoder = msgspec.json.Encoder()
