"""Router composition root: config projection + `keyrail.route` responder (queue group)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from keyrail_common import subjects
from keyrail_common.access_log import AccessLog
from keyrail_common.activity import ActivityPublisher
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.failures import ErrorInfo, FailureClass, failure
from keyrail_common.logs import configure_logging
from keyrail_common.messages import ProviderResult, RouteRequest, encode, route_request_decoder
from keyrail_common.projection import ConfigProjection
from keyrail_common.registry import load_registry
from keyrail_common.runtime import (
    DRAIN_S,
    ConcurrentHandler,
    answer_health,
    run_until_signalled,
    start_metrics,
)
from keyrail_common.settings import Settings, load_settings
from keyrail_common.wire import decode_or_refuse
from keyrail_router.breaker import BreakerBoard, BreakerSettings
from keyrail_router.breaker_feed import BreakerFeed
from keyrail_router.configs import resolve_route
from keyrail_router.executor import Executor
from keyrail_router.metrics import ROUTE_SECONDS, ROUTED, BreakerCollector
from keyrail_router.resolve import Resolver

log = logging.getLogger("keyrail.router")


class RouterService:
    def __init__(
        self,
        nc: NATS,
        projection: ConfigProjection,
        resolver: Resolver,
        executor: Executor,
        access_log: AccessLog,
        request_timeout_s: float,
        pick: Callable[[], float] = random.random,
    ) -> None:
        self._nc = nc
        self._projection = projection
        self._resolver = resolver
        self._executor = executor
        self._access_log = access_log
        self._request_timeout_ns = int(request_timeout_s * 1e9)
        self._pick = pick  # the random numbers of `loadbalance` configs

    async def on_route(self, msg: Msg) -> None:
        request = decode_or_refuse(route_request_decoder, msg.data, msg.subject)
        if isinstance(request, str):
            error = failure(FailureClass.WORKER_ERROR, f"The router refused the request: {request}.")
            await msg.respond(encode(ProviderResult(ok=False, http_status=error.http_status, error=error)))
            return
        if not request.deadline_ns:  # a version-1 ingress sends none
            request.deadline_ns = request.received_ns + self._request_timeout_ns
        with ROUTE_SECONDS.time():
            if not await self._projection.wait_for(request.min_config_seq):
                log.warning("config projection behind seq=%d", request.min_config_seq)
            route = resolve_route(self._resolver, self._projection.state, request, self._pick)
            if isinstance(route, ErrorInfo):
                result: ProviderResult | None = ProviderResult(
                    ok=False, http_status=route.http_status, attempts=0, error=route
                )
            else:
                result = await self._executor.execute(request, route.targets, msg.reply, route=route)
        if result is None:
            self._log(
                request,
                route.targets[0].provider_slug if not isinstance(route, ErrorInfo) else "",
                "forwarded",
                1,
            )
            return
        self._log(request, result.provider_slug, result.http_status, result.attempts)
        await msg.respond(encode(result))

    def _log(self, request: RouteRequest, slug: str, outcome: int | str, attempts: int) -> None:
        ROUTED(slug or "-", outcome).inc()
        self._access_log.line(
            request_id=request.request_id,
            provider_slug=slug,
            model=request.model,
            status=outcome,
            attempts=attempts,
        )


def breaker_settings(settings: Settings) -> BreakerSettings:
    return BreakerSettings(
        failures=settings.breaker_failures,
        window_s=settings.breaker_window_s,
        cooldown_s=settings.breaker_cooldown_s,
    )


def _breaker_answer(breakers: BreakerFeed) -> Callable[[Msg], Awaitable[None]]:
    """Any replica answers for a provider slug: they all fold the same attempt rows."""

    async def answer(msg: Msg) -> None:
        await msg.respond(encode(breakers.report(msg.data.decode(errors="replace"))))

    return answer


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    nc = await connect(settings.nats_url, "keyrail-router")
    js = nc.jetstream()
    await ensure_streams(js)
    projection = ConfigProjection(js)
    await projection.start()
    access_log = AccessLog("router", settings.access_log)
    access_log.start()
    activity = ActivityPublisher(js, settings.activity_buffer_rows)
    resolver = Resolver(load_registry(settings.providers_override))
    breakers = BreakerFeed(js, BreakerBoard(breaker_settings(settings)))
    await breakers.start()
    REGISTRY.register(BreakerCollector(breakers.board))
    await nc.subscribe(subjects.ROUTER_BREAKERS, queue=subjects.ROUTER_QUEUE, cb=_breaker_answer(breakers))
    executor = Executor(nc, resolver, activity, breakers)
    await executor.start()
    service = RouterService(nc, projection, resolver, executor, access_log, settings.request_timeout_s)
    handler = ConcurrentHandler(service.on_route)
    await nc.subscribe(subjects.ROUTE, queue=subjects.ROUTER_QUEUE, cb=handler.dispatch)
    await answer_health(nc, "router")
    start_metrics(settings.metrics_port, settings.metrics_host)
    log.info("router ready (config seq %d)", projection.applied_seq)
    await stop.wait()
    await handler.wait_idle(DRAIN_S)
    await executor.stop()
    await activity.close()
    await close_bus(nc)
    await access_log.close()


def main() -> None:
    configure_logging("router")
    settings = load_settings()
    run_until_signalled(lambda stop: serve(settings, stop))
