"""JetStream KEYRAIL_ACTIVITY → ClickHouse, in large batches, acked only after the insert.

Rows accumulate across fetches until `MAX_ROWS` or `MAX_WAIT_S`: ClickHouse pays a fixed cost per
insert (about 14 ms of CPU in chDB) and merges every part it creates later, so few large inserts
cost far less CPU than many small ones.
A crash before the ack redelivers the messages. The rows of a redelivered message may be in
ClickHouse already: they are checked and only the missing ones inserted, because the daily cost
rollups (materialized views) would count a repeat twice; the table's ReplacingMergeTree key is the
second line of defence for the activity log itself.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from keyrail_audit.metrics import ACTIVITY_LAG_SECONDS, INSERT_FAILURES, INSERT_SECONDS, ROWS_WRITTEN
from keyrail_audit.store import ActivityStore
from keyrail_common import subjects
from keyrail_common.activity import batch_decoder
from keyrail_common.messages import ActivityRow

log = logging.getLogger("keyrail.audit")

MAX_ROWS = 20_000
MAX_WAIT_S = 2.0
# A message this service holds is redelivered this long after it last heard from us: after a
# crash, the backlog is written within seconds of the restart. While alive, the service tells
# JetStream every `_PROGRESS_S` that it is still working on what it holds (a slow insert included),
# so a live batch is never redelivered behind its back.
ACK_WAIT_S = 6.0
_PROGRESS_S = ACK_WAIT_S / 3
_FETCH_BATCH = 256
_FETCH_WAIT_S = 0.2


def unique_rows(rows: list[ActivityRow]) -> list[ActivityRow]:
    """One row per key (org, request, kind, attempt): a batch published twice counts once."""
    by_key = {(r.org_id, r.request_id, r.kind, r.attempt): r for r in rows}
    return rows if len(by_key) == len(rows) else list(by_key.values())


class ActivityConsumer:
    def __init__(self, js: JetStreamContext, store: ActivityStore) -> None:
        self._js = js
        self._store = store
        self._messages: list[Msg] = []
        self._inserting: list[Msg] = []  # the messages of the insert under way
        self._rows: list[ActivityRow] = []
        self._redelivered = False  # some of the rows may have been written before a crash
        self.store_failing = False  # the last insert failed: rows wait in JetStream
        self._first_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        subscription = await self._js.pull_subscribe(
            subjects.ACTIVITY_SUBJECTS,
            durable=subjects.AUDIT_DURABLE,
            stream=subjects.ACTIVITY_STREAM,
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=50_000, ack_wait=ACK_WAIT_S),
        )
        progress = asyncio.create_task(self._keep_held(stop))
        while not stop.is_set():
            try:
                self._add(await subscription.fetch(_FETCH_BATCH, timeout=_FETCH_WAIT_S))
            except TimeoutError:
                # Nothing to fetch: the normal idle case. nats-py raises its own TimeoutError or
                # asyncio's (the builtin) depending on where in the pull the wait ran out.
                pass
            except Exception as exc:
                log.warning("fetch failed: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(0.5)
            if self._messages and (
                len(self._rows) >= MAX_ROWS or time.monotonic() - self._first_at >= MAX_WAIT_S
            ):
                await self._flush()
        # Shutting down: take what the other services published on their way out, then insert it.
        while True:
            try:
                self._add(await subscription.fetch(_FETCH_BATCH, timeout=_FETCH_WAIT_S))
            except Exception:
                break
        if self._messages:
            await self._flush()
        progress.cancel()
        await subscription.unsubscribe()

    async def _keep_held(self, stop: asyncio.Event) -> None:
        """Tell JetStream the held messages are still being worked on (they must not be
        redelivered to nobody while a batch fills or a slow insert runs)."""
        while not stop.is_set():
            await asyncio.sleep(_PROGRESS_S)
            for message in [*self._messages, *self._inserting]:
                try:
                    await message.in_progress()
                except Exception as exc:  # reconnecting: the next round tries again
                    log.debug("in-progress ack failed: %s", type(exc).__name__)
                    break

    def _add(self, messages: list[Msg]) -> None:
        if not self._messages:
            self._first_at = time.monotonic()
        for message in messages:
            self._messages.append(message)
            self._redelivered = self._redelivered or message.metadata.num_delivered > 1
            try:
                self._rows.extend(batch_decoder.decode(message.data).rows)
            except msgspec.DecodeError:
                log.error("dropping undecodable activity message seq=%s", message.metadata.sequence.stream)

    async def _flush(self) -> None:
        messages, rows, redelivered = self._messages, unique_rows(self._rows), self._redelivered
        self._messages, self._rows, self._redelivered = [], [], False
        self._inserting = messages
        try:
            await self._write(messages, rows, redelivered)
        finally:
            self._inserting = []

    async def _write(self, messages: list[Msg], rows: list[ActivityRow], redelivered: bool) -> None:
        try:
            with INSERT_SECONDS.time():
                if redelivered:
                    rows = await self._store.not_yet_written(rows)
                if rows:
                    await self._store.insert(rows)
        except Exception:
            self.store_failing = True
            INSERT_FAILURES.inc()
            log.exception("insert of %d rows failed; they will be redelivered", len(rows))
            for message in messages:
                await message.nak(delay=1.0)
            return
        self.store_failing = False
        for message in messages:
            await message.ack()
        ROWS_WRITTEN.inc(len(rows))
        if rows:
            ACTIVITY_LAG_SECONDS.observe(time.time() - rows[0].ts_ms / 1000)
