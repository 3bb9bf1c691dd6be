"""Router composition root: config projection + `keyrail.route` responder (queue group)."""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from keyrail_common import subjects
from keyrail_common.access_log import AccessLog
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.catalog import Catalog
from keyrail_common.errors import make_error
from keyrail_common.logs import configure_logging
from keyrail_common.messages import ErrorInfo, ProviderResult, RouteRequest, encode, route_request_decoder
from keyrail_common.projection import ConfigProjection
from keyrail_common.runtime import (
    DRAIN_S,
    ConcurrentHandler,
    answer_health,
    run_until_signalled,
    start_metrics,
)
from keyrail_common.settings import Settings, load_settings
from keyrail_common.subjects import provider_pool
from keyrail_router.fallback import dispatch, provider_call
from keyrail_router.metrics import ROUTE_SECONDS, ROUTED
from keyrail_router.resolve import resolve_targets

log = logging.getLogger("keyrail.router")


class RouterService:
    def __init__(
        self, nc: NATS, projection: ConfigProjection, catalog: Catalog, access_log: AccessLog
    ) -> None:
        self._nc = nc
        self._projection = projection
        self._catalog = catalog
        self._access_log = access_log

    async def on_route(self, msg: Msg) -> None:
        try:
            request = route_request_decoder.decode(msg.data)
        except msgspec.DecodeError:
            error = make_error(400, "Router received an undecodable route request.", code="bad_route_request")
            await msg.respond(encode(ProviderResult(ok=False, http_status=400, error=error)))
            return
        with ROUTE_SECONDS.time():
            if not await self._projection.wait_for(request.min_config_seq):
                log.warning("config projection behind seq=%d", request.min_config_seq)
            resolution = resolve_targets(
                self._projection.state, self._catalog, request.project_id, request.model, request.pinned_slug
            )
            if isinstance(resolution, ErrorInfo):
                result = ProviderResult(
                    ok=False, http_status=resolution.http_status, attempts=0, error=resolution
                )
            elif len(resolution) == 1:
                # Nothing left to decide: the worker answers the ingress directly (one hop fewer).
                target = resolution[0]
                call = provider_call(request, target, 0, time.time_ns())
                await self._nc.publish(provider_pool(target.family), encode(call), reply=msg.reply)
                self._log(request, target.provider_slug, "forwarded", 1)
                return
            else:
                result = await dispatch(self._nc, request, resolution)
        self._log(request, result.provider_slug, result.http_status, result.attempts)
        await msg.respond(encode(result))

    def _log(self, request: RouteRequest, slug: str, outcome: int | str, attempts: int) -> None:
        ROUTED.labels(slug or "-", str(outcome)).inc()
        self._access_log.line(
            request_id=request.request_id,
            provider_slug=slug,
            model=request.model,
            status=outcome,
            attempts=attempts,
        )


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    nc = await connect(settings.nats_url, "keyrail-router")
    js = nc.jetstream()
    await ensure_streams(js)
    projection = ConfigProjection(js)
    await projection.start()
    access_log = AccessLog("router", settings.access_log)
    access_log.start()
    service = RouterService(nc, projection, Catalog.load_default(), access_log)
    handler = ConcurrentHandler(service.on_route)
    await nc.subscribe(subjects.ROUTE, queue=subjects.ROUTER_QUEUE, cb=handler.dispatch)
    await answer_health(nc, "router")
    start_metrics(settings.metrics_port, settings.metrics_host)
    log.info("router ready (config seq %d)", projection.applied_seq)
    await stop.wait()
    await handler.wait_idle(DRAIN_S)
    await close_bus(nc)
    await access_log.close()


def main() -> None:
    configure_logging("router")
    settings = load_settings()
    run_until_signalled(lambda stop: serve(settings, stop))
