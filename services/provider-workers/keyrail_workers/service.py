"""Provider worker composition root: one pool per provider family, a queue group each."""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client as NATS

from keyrail_common import subjects
from keyrail_common.access_log import AccessLog
from keyrail_common.activity import ActivityPublisher
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.logs import configure_logging
from keyrail_common.runtime import (
    DRAIN_S,
    ConcurrentHandler,
    answer_health,
    run_until_signalled,
    start_metrics,
)
from keyrail_common.settings import Settings, load_settings
from keyrail_common.vault import CachedCredentials, CredentialStore
from keyrail_workers.call import ProviderCallHandler
from keyrail_workers.http_client import UpstreamPool

log = logging.getLogger("keyrail.worker")

SUPPORTED_FAMILIES = ("openai",)


async def serve(settings: Settings, families: list[str], stop: asyncio.Event) -> None:
    unknown = [f for f in families if f not in SUPPORTED_FAMILIES]
    if unknown:
        raise SystemExit(f"unsupported provider families {unknown}; this build serves {SUPPORTED_FAMILIES}")
    nc: NATS = await connect(settings.nats_url, "keyrail-worker-" + "-".join(families))
    js = nc.jetstream()
    await ensure_streams(js)
    access_log = AccessLog("worker", settings.access_log)
    access_log.start()
    activity = ActivityPublisher(js)
    upstream = UpstreamPool()
    handler = ProviderCallHandler(
        nc, CachedCredentials(CredentialStore(settings)), upstream, activity, access_log
    )
    calls = ConcurrentHandler(handler.on_call)
    await nc.subscribe(subjects.STREAM_CANCEL, cb=handler.cancel_stream)
    for family in families:
        await nc.subscribe(subjects.provider_pool(family), queue=f"worker-{family}", cb=calls.dispatch)
        await answer_health(nc, f"worker.{family}")
    start_metrics(settings.metrics_port, settings.metrics_host)
    log.info("worker ready for %s", ",".join(families))
    await stop.wait()
    await calls.wait_idle(DRAIN_S)
    await close_bus(nc)
    await activity.close()
    upstream.close()
    await access_log.close()


def main(families: list[str]) -> None:
    configure_logging("worker")
    settings = load_settings()
    run_until_signalled(lambda stop: serve(settings, families, stop))
