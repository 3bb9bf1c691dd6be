"""Ingress composition root: FastAPI app (data plane + admin API) served by uvicorn on uvloop."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common.access_log import AccessLog
from keyrail_common.activity import ActivityPublisher
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.catalog import Catalog
from keyrail_common.logs import configure_logging
from keyrail_common.projection import ConfigProjection, ConfigPublisher
from keyrail_common.registry import load_registry
from keyrail_common.settings import Settings, load_settings
from keyrail_common.vault import CredentialStore
from keyrail_ingress import admin
from keyrail_ingress.bootstrap import bootstrap
from keyrail_ingress.chat import chat_completions
from keyrail_ingress.context import IngressContext
from keyrail_ingress.fast_path import DataPlaneApp
from keyrail_ingress.health import healthz
from keyrail_ingress.responses import error
from keyrail_ingress.stream_inbox import StreamInboxes

log = logging.getLogger("keyrail.ingress")


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def not_found(request: Request, exc: Exception) -> Response:
    return error(404, f"No route {request.method} {request.url.path}.", "not_found")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return error(405, f"{request.method} is not allowed on {request.url.path}.", "method_not_allowed")


async def method_not_allowed_route(request: Request) -> Response:
    return await method_not_allowed(request, Exception())


DATA_PLANE = {f"{prefix}/chat/completions": chat_completions for prefix in ("/v1", "/api/v1")}


def create_app(settings: Settings) -> DataPlaneApp:
    registry = load_registry(settings.providers_override)  # a bad override fails the start, not a request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, "keyrail-ingress")
        js = nc.jetstream()
        await ensure_streams(js)
        projection = ConfigProjection(js)
        await projection.start()
        publisher = ConfigPublisher(js, projection)
        await bootstrap(projection, publisher, settings.bootstrap_token)
        access_log = AccessLog("ingress", settings.access_log)
        access_log.start()
        stream_inboxes = StreamInboxes(nc)
        await stream_inboxes.start()
        app.state.ctx = IngressContext(
            settings=settings,
            nc=nc,
            js=js,
            projection=projection,
            publisher=publisher,
            activity=ActivityPublisher(js),
            credentials=CredentialStore(settings),
            access_log=access_log,
            stream_inboxes=stream_inboxes,
            registry=registry,
            catalog=Catalog.load_default(),
        )
        log.info("ingress ready on http://%s:%d", settings.host, settings.port)
        yield
        await app.state.ctx.activity.close()
        await close_bus(nc)
        await access_log.close()

    app = FastAPI(
        title="Keyrail",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        exception_handlers={404: not_found, 405: method_not_allowed},
    )
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    app.include_router(admin.router)
    for path in DATA_PLANE:
        # Reached only for methods other than POST (the fast path takes POSTs): a clear 405.
        app.add_api_route(path, method_not_allowed_route, methods=["GET", "PUT", "DELETE", "PATCH"])
    return DataPlaneApp(app, DATA_PLANE)  # type: ignore[arg-type]


def main() -> None:
    configure_logging("ingress")
    settings = load_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
