"""JetStream KEYRAIL_ACTIVITY → ClickHouse, in large batches, acked only after the insert.

Rows accumulate across fetches until `MAX_ROWS` or `MAX_WAIT_S`: ClickHouse pays a fixed cost per
insert (about 14 ms of CPU in chDB) and merges every part it creates later, so few large inserts
cost far less CPU than many small ones.
A crash before the ack redelivers the messages. The rows of a redelivered message may be in
ClickHouse already: they are checked and only the missing ones inserted, because the daily cost
rollups (materialized views) would count a repeat twice; the table's ReplacingMergeTree key is the
second line of defence for the activity log itself.

While ClickHouse cannot be reached or written, the rows wait in JetStream: the service opens the
store and retries a failed insert with a growing pause (`RetryPause`), holding the batch it has
(never acked, kept from redelivery by in-progress acks) and fetching nothing more, so an outage
costs one attempt every few seconds, not a busy loop. A batch whose insert failed is checked
against ClickHouse before the retry (the failure may have come after the write).
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from keyrail_audit.metrics import ACTIVITY_LAG_SECONDS, INSERT_FAILURES, INSERT_SECONDS, ROWS_WRITTEN
from keyrail_audit.store import ActivityStore, StoreState
from keyrail_common import subjects
from keyrail_common.activity import batch_decoder
from keyrail_common.messages import ActivityRow
from keyrail_common.runtime import install_stop_signals

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
# The durable's settings. On start an existing durable is brought to them (an older version
# created it with a 60 s ack wait, and JetStream keeps a durable's config until it is updated).
CONSUMER_CONFIG = ConsumerConfig(
    durable_name=subjects.AUDIT_DURABLE,
    ack_policy=AckPolicy.EXPLICIT,
    max_ack_pending=50_000,
    ack_wait=ACK_WAIT_S,
)


class RetryPause:
    """The pause before the next attempt at an unreachable store: doubling from `first_s` up to
    `max_s`, back to `first_s` after a success."""

    def __init__(self, first_s: float = 0.5, max_s: float = 5.0) -> None:
        self._first_s, self._max_s = first_s, max_s
        self._next_s = first_s

    def next(self) -> float:
        pause, self._next_s = self._next_s, min(self._next_s * 2, self._max_s)
        return pause

    def reset(self) -> None:
        self._next_s = self._first_s


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if the service is stopping."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def ensure_consumer(js: JetStreamContext) -> None:
    """Create the durable, or bring an existing one to `CONSUMER_CONFIG`. An update keeps the
    durable's position and its unacknowledged messages (JetStream updates ack_wait and
    max_ack_pending in place)."""
    try:
        info = await js.consumer_info(subjects.ACTIVITY_STREAM, subjects.AUDIT_DURABLE)
    except NotFoundError:
        info = None
    if info is not None and (
        info.config.ack_wait == CONSUMER_CONFIG.ack_wait
        and info.config.max_ack_pending == CONSUMER_CONFIG.max_ack_pending
    ):
        return
    if info is not None:
        log.info(
            "updating the %s consumer: ack wait %ss -> %ss",
            subjects.AUDIT_DURABLE,
            info.config.ack_wait,
            CONSUMER_CONFIG.ack_wait,
        )
        # The rest of the durable's config as it is (its filter and deliver policy cannot change).
        config = info.config.evolve(
            ack_wait=CONSUMER_CONFIG.ack_wait, max_ack_pending=CONSUMER_CONFIG.max_ack_pending
        )
    else:
        config = CONSUMER_CONFIG.evolve(filter_subject=subjects.ACTIVITY_SUBJECTS)
    await js.add_consumer(subjects.ACTIVITY_STREAM, config)


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
        self.store_state = StoreState.UNAVAILABLE  # what the health answer reports
        self._first_at = 0.0
        self._retry = RetryPause()

    async def run(self, stop: asyncio.Event) -> None:
        await ensure_consumer(self._js)
        await self._open_store(stop)
        if stop.is_set():
            return  # stopped before ClickHouse was reachable: every row is still in JetStream
        subscription = await self._js.pull_subscribe_bind(
            subjects.AUDIT_DURABLE, stream=subjects.ACTIVITY_STREAM
        )
        await self.consume(subscription, stop)

    async def consume(self, subscription: JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
        """Fetch, batch, insert and ack until `stop`, then write what is left."""
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
                await self._flush(stop)
        # Shutting down: take what the other services published on their way out, then insert it
        # (unless ClickHouse is failing: then everything stays in JetStream for the next start).
        while self.store_state is StoreState.OK:
            try:
                self._add(await subscription.fetch(_FETCH_BATCH, timeout=_FETCH_WAIT_S))
            except Exception:
                break
        if self._messages:
            await self._flush(stop)
        progress.cancel()
        await subscription.unsubscribe()

    async def _open_store(self, stop: asyncio.Event) -> None:
        """Open ClickHouse, retrying until it answers (or the service stops)."""
        while not stop.is_set():
            try:
                await self._store.open()
            except Exception as exc:
                pause = self._retry.next()
                log.warning("cannot open ClickHouse (%s); rows wait in JetStream, retry in %.1fs", exc, pause)
                await _pause(stop, pause)
                continue
            finally:
                install_stop_signals(stop)  # the embedded ClickHouse engine replaces SIGTERM/SIGINT's
            self._retry.reset()
            self.store_state = StoreState.OK
            return

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

    async def _flush(self, stop: asyncio.Event) -> None:
        """Insert the rows held, then ack their messages. While the insert fails: retry after a
        pause until it succeeds; stopping, leave the messages to JetStream for the next start."""
        messages, rows, redelivered = self._messages, unique_rows(self._rows), self._redelivered
        self._messages, self._rows, self._redelivered = [], [], False
        self._inserting = messages
        try:
            while not await self._write(messages, rows, redelivered):
                redelivered = True  # the failure may have come after ClickHouse wrote them
                if stop.is_set():
                    for message in messages:  # redelivered at once to whoever consumes next
                        await message.nak()
                    return
                await _pause(stop, self._retry.next())
        finally:
            self._inserting = []

    async def _write(self, messages: list[Msg], rows: list[ActivityRow], redelivered: bool) -> bool:
        """True when the rows are in ClickHouse and their messages acked."""
        try:
            with INSERT_SECONDS.time():
                if redelivered:
                    rows = await self._store.not_yet_written(rows)
                if rows:
                    await self._store.insert(rows)
        except Exception as exc:
            INSERT_FAILURES.inc()
            if self.store_state is StoreState.OK:  # the first failure of an outage, in full
                log.exception("insert of %d rows failed; they wait in JetStream and are retried", len(rows))
            else:
                log.warning("insert of %d rows failed again: %s", len(rows), exc)
            self.store_state = StoreState.FAILING
            return False
        if self.store_state is not StoreState.OK:
            log.info("ClickHouse writable again")
        self.store_state = StoreState.OK
        self._retry.reset()
        for message in messages:
            await message.ack()
        ROWS_WRITTEN.inc(len(rows))
        if rows:
            ACTIVITY_LAG_SECONDS.observe(time.time() - rows[0].ts_ms / 1000)
        return True
