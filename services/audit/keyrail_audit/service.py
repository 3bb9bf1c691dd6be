"""Audit composition root: the activity consumer (consumer.py) plus activity queries over NATS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.msg import Msg

from keyrail_audit.backlog import AuditHealth, Backlog, health_encoder
from keyrail_audit.consumer import ActivityConsumer
from keyrail_audit.store import ActivityStore, StoreUnavailable
from keyrail_common import subjects
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.clickhouse import Retention
from keyrail_common.logs import configure_logging
from keyrail_common.messages import ActivityQuery, CostQuery, KeyUsageQuery, QueryResult, SqlQuery
from keyrail_common.runtime import answer_health, run_until_signalled, start_metrics
from keyrail_common.settings import Settings, load_settings

log = logging.getLogger("keyrail.audit")

_encode = msgspec.msgpack.Encoder().encode
_query_decoder = msgspec.msgpack.Decoder(ActivityQuery)
_sql_decoder = msgspec.msgpack.Decoder(SqlQuery)
_key_usage_decoder = msgspec.msgpack.Decoder(KeyUsageQuery)
_costs_decoder = msgspec.msgpack.Decoder(CostQuery)


def _store_failed(what: str, exc: Exception) -> QueryResult:
    """The answer when ClickHouse failed a query of ours (their SQL is right: it is the store)."""
    if isinstance(exc, StoreUnavailable):
        message = f"{what} failed: ClickHouse cannot be reached yet; the activity rows wait in JetStream"
    else:
        message = f"{what} failed: {type(exc).__name__}"
    return QueryResult(error=message, unavailable=True)


def _answering(
    what: str, query: Callable[[bytes], Awaitable[QueryResult]]
) -> Callable[[Msg], Awaitable[None]]:
    """A responder for one of the admin API's own queries: a failure is the store's."""

    async def respond(msg: Msg) -> None:
        try:
            result = await query(msg.data)
        except Exception as exc:
            result = _store_failed(what, exc)
        await msg.respond(_encode(result))

    return respond


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    nc = await connect(settings.nats_url, "keyrail-audit")
    js = nc.jetstream()
    await ensure_streams(js)
    # Opened by the consumer, which keeps trying while ClickHouse is unreachable; until then the
    # queries answer that it is, and the health answer says so.
    store = ActivityStore(
        settings.clickhouse_url,
        Retention(activity_days=settings.activity_ttl_days, costs_days=settings.costs_ttl_days),
    )

    async def on_sql(msg: Msg) -> None:
        try:
            result = await store.read_only_sql(_sql_decoder.decode(msg.data).sql)
        except StoreUnavailable as exc:
            result = _store_failed("SQL", exc)
        except Exception as exc:  # the analyst's SQL, most likely: ClickHouse's own words
            result = QueryResult(error=str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__)
        await msg.respond(_encode(result))

    on_activity_query = _answering("activity query", lambda data: store.activity(_query_decoder.decode(data)))
    on_key_usage = _answering(
        "key usage query", lambda data: store.key_usage(_key_usage_decoder.decode(data))
    )
    on_costs = _answering("cost query", lambda data: store.costs(_costs_decoder.decode(data)))
    await nc.subscribe(subjects.AUDIT_ACTIVITY_QUERY, queue=subjects.AUDIT_QUEUE, cb=on_activity_query)
    await nc.subscribe(subjects.AUDIT_SQL, queue=subjects.AUDIT_QUEUE, cb=on_sql)
    await nc.subscribe(subjects.AUDIT_KEY_USAGE, queue=subjects.AUDIT_QUEUE, cb=on_key_usage)
    await nc.subscribe(subjects.AUDIT_COSTS, queue=subjects.AUDIT_QUEUE, cb=on_costs)
    consumer = ActivityConsumer(js, store)
    consuming = asyncio.create_task(consumer.run(stop))
    backlog = Backlog(js)
    polling = asyncio.create_task(backlog.run(stop))

    def health() -> bytes:
        return health_encoder.encode(AuditHealth(backlog=backlog.messages, store=consumer.store_state))

    await answer_health(nc, "audit", health)
    start_metrics(settings.metrics_port, settings.metrics_host)
    log.info("audit ready (%s)", settings.clickhouse_url.split("://", 1)[0])
    await stop.wait()
    await consuming
    await polling
    await close_bus(nc)
    await store.close()


def main() -> None:
    configure_logging("audit")
    # While a ClickHouse server is unreachable, the consumer's warning names the failure once per
    # attempt; the HTTP driver's own two lines per attempt would only repeat it.
    for repeats in ("urllib3.connectionpool", "clickhouse_connect.driver"):
        logging.getLogger(repeats).setLevel(logging.ERROR)
    settings = load_settings()
    run_until_signalled(lambda stop: serve(settings, stop))
