"""Audit composition root: JetStream KEYRAIL_ACTIVITY → ClickHouse, plus activity queries over NATS.

The durable consumer fetches batches, inserts them, and acks only after the insert: a crash
between the two redelivers the batch, and the table's ReplacingMergeTree key deduplicates it.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig

from keyrail_audit.metrics import INSERT_SECONDS, ROWS_WRITTEN
from keyrail_audit.store import ActivityStore
from keyrail_common import subjects
from keyrail_common.activity import batch_decoder
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.logs import configure_logging
from keyrail_common.messages import ActivityQuery, ActivityRow, QueryResult, SqlQuery
from keyrail_common.runtime import answer_health, install_stop_signals, run_until_signalled, start_metrics
from keyrail_common.settings import Settings, load_settings

log = logging.getLogger("keyrail.audit")

_FETCH_BATCH = 200
_FETCH_WAIT_S = 0.25
_encode = msgspec.msgpack.Encoder().encode
_query_decoder = msgspec.msgpack.Decoder(ActivityQuery)
_sql_decoder = msgspec.msgpack.Decoder(SqlQuery)


async def consume(js: object, store: ActivityStore, stop: asyncio.Event) -> None:
    subscription = await js.pull_subscribe(  # type: ignore[attr-defined]
        subjects.ACTIVITY_SUBJECTS,
        durable=subjects.AUDIT_DURABLE,
        stream=subjects.ACTIVITY_STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000, ack_wait=60.0),
    )
    while not stop.is_set():
        try:
            messages = await subscription.fetch(_FETCH_BATCH, timeout=_FETCH_WAIT_S)
        except NatsTimeout:
            continue
        except Exception as exc:
            log.warning("fetch failed: %s", type(exc).__name__)
            await asyncio.sleep(0.5)
            continue
        rows: list[ActivityRow] = []
        for message in messages:
            try:
                rows.extend(batch_decoder.decode(message.data).rows)
            except msgspec.DecodeError:
                log.error("dropping undecodable activity message seq=%s", message.metadata.sequence.stream)
        try:
            with INSERT_SECONDS.time():
                if rows:
                    await store.insert(rows)
        except Exception:
            log.exception("insert of %d rows failed; they will be redelivered", len(rows))
            for message in messages:
                await message.nak(delay=1.0)
            continue
        for message in messages:
            await message.ack()
        ROWS_WRITTEN.inc(len(rows))
    await subscription.unsubscribe()


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    nc = await connect(settings.nats_url, "keyrail-audit")
    js = nc.jetstream()
    await ensure_streams(js)
    store = ActivityStore(settings.clickhouse_url)
    await store.open()
    install_stop_signals(stop)  # the embedded ClickHouse engine replaces SIGTERM/SIGINT handlers

    async def on_activity_query(msg: Msg) -> None:
        try:
            result = await store.activity(_query_decoder.decode(msg.data))
        except Exception as exc:
            result = QueryResult(error=f"activity query failed: {type(exc).__name__}")
        await msg.respond(_encode(result))

    async def on_sql(msg: Msg) -> None:
        try:
            result = await store.read_only_sql(_sql_decoder.decode(msg.data).sql)
        except Exception as exc:
            result = QueryResult(error=str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__)
        await msg.respond(_encode(result))

    await nc.subscribe(subjects.AUDIT_ACTIVITY_QUERY, queue=subjects.AUDIT_QUEUE, cb=on_activity_query)
    await nc.subscribe(subjects.AUDIT_SQL, queue=subjects.AUDIT_QUEUE, cb=on_sql)
    consumer = asyncio.create_task(consume(js, store, stop))
    await answer_health(nc, "audit")
    start_metrics(settings.metrics_port)
    log.info("audit ready (%s)", settings.clickhouse_url.split("://", 1)[0])
    await stop.wait()
    await consumer
    await close_bus(nc)
    await store.close()


def main() -> None:
    configure_logging("audit")
    settings = load_settings()
    run_until_signalled(lambda stop: serve(settings, stop))
