"""Provider worker composition root: one pool per adapter (wire format), a NATS queue group each.

An operator scales each pool alone: `keyrail worker --providers anthropic` serves only the
Anthropic pool. The pool names are the provider registry's adapters.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client as NATS

from keyrail_common import subjects
from keyrail_common.access_log import AccessLog
from keyrail_common.activity import ActivityPublisher
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.logs import configure_logging
from keyrail_common.registry import load_registry
from keyrail_common.runtime import (
    DRAIN_S,
    ConcurrentHandler,
    answer_health,
    run_until_signalled,
    start_metrics,
)
from keyrail_common.settings import Settings, load_settings
from keyrail_common.vault import CachedCredentials, CredentialStore
from keyrail_workers.handler import ProviderCallHandler
from keyrail_workers.http_client import ProxySettings, UpstreamPool
from keyrail_workers.runner import AttemptRunner

log = logging.getLogger("keyrail.worker")


async def serve(settings: Settings, pools: list[str], stop: asyncio.Event) -> None:
    registry = load_registry(settings.providers_override)
    available = registry.pools()
    unknown = [p for p in pools if p not in available]
    if unknown:
        raise SystemExit(f"unknown or unavailable worker pools {unknown}; this version serves {available}")
    try:  # HTTPS_PROXY / HTTP_PROXY / NO_PROXY, read once here for the life of the worker
        proxies = ProxySettings.from_environ()
    except ValueError as exc:  # names the variable, never its value (it may hold a password)
        raise SystemExit(f"cannot use the proxy settings: {exc}") from None
    nc: NATS = await connect(settings.nats_url, "keyrail-worker-" + "-".join(pools))
    js = nc.jetstream()
    await ensure_streams(js)
    access_log = AccessLog("worker", settings.access_log)
    access_log.start()
    activity = ActivityPublisher(js, settings.activity_buffer_rows)
    upstream = UpstreamPool(proxies=proxies)
    log.info("upstream proxies: %r", proxies)  # credentials are never part of the repr
    runner = AttemptRunner(registry, CachedCredentials(CredentialStore(settings)), upstream, nc.publish)
    handler = ProviderCallHandler(nc, runner, activity, access_log)
    calls = ConcurrentHandler(handler.on_call)
    await nc.subscribe(subjects.STREAM_CANCEL, cb=handler.cancel_stream)
    for pool in pools:
        await nc.subscribe(subjects.provider_pool(pool), queue=f"worker-{pool}", cb=calls.dispatch)
        await answer_health(nc, f"worker.{pool}")
    start_metrics(settings.metrics_port, settings.metrics_host)
    log.info("worker ready for %s", ",".join(pools))
    await stop.wait()
    await calls.wait_idle(DRAIN_S)
    await activity.close()
    await close_bus(nc)
    upstream.close()
    await access_log.close()


def main(pools: list[str]) -> None:
    configure_logging("worker")
    settings = load_settings()
    run_until_signalled(lambda stop: serve(settings, pools, stop))
