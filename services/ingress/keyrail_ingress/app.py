"""Ingress composition root: FastAPI app (data plane + admin API) served by uvicorn on uvloop."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import uvicorn
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common.access_log import AccessLog
from keyrail_common.activity import ActivityPublisher
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.logs import configure_logging
from keyrail_common.projection import ConfigProjection, ConfigPublisher
from keyrail_common.registry import load_registry
from keyrail_common.settings import Settings, load_settings
from keyrail_common.vault import CredentialStore
from keyrail_ingress.admin import routes as admin_routes
from keyrail_ingress.admin.history import ChangeHistory
from keyrail_ingress.api_reference import CONTENT_SECURITY_POLICY
from keyrail_ingress.bootstrap import bootstrap
from keyrail_ingress.chat import chat_completions
from keyrail_ingress.context import IngressContext
from keyrail_ingress.embeddings import embeddings
from keyrail_ingress.fast_path import DataPlaneApp
from keyrail_ingress.health import healthz
from keyrail_ingress.models import list_models
from keyrail_ingress.openapi import ApiDocs
from keyrail_ingress.responses import error
from keyrail_ingress.stream_inbox import StreamInboxes

log = logging.getLogger("keyrail.ingress")


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def not_found(request: Request, exc: Exception) -> Response:
    return error(404, f"No route {request.method} {request.url.path}.", "not_found")


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    return error(405, f"{request.method} is not allowed on {request.url.path}.", "method_not_allowed")


async def internal_error(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware sends this, then re-raises so uvicorn logs the exception.
    return error(500, "Keyrail failed to handle this request; the error is logged.", "internal_error")


async def method_not_allowed_route(request: Request) -> Response:
    return await method_not_allowed(request, Exception())


async def openapi_json(request: Request) -> Response:
    docs: ApiDocs = request.app.state.api_docs
    return Response(docs.json, media_type="application/json")


async def api_reference(request: Request) -> Response:
    docs: ApiDocs = request.app.state.api_docs
    return Response(
        docs.html,
        media_type="text/html; charset=utf-8",
        headers={"content-security-policy": CONTENT_SECURITY_POLICY},
    )


DATA_PLANE = {
    f"{prefix}/{path}": handler
    for prefix in ("/v1", "/api/v1")
    for path, handler in (("chat/completions", chat_completions), ("embeddings", embeddings))
}


def create_app(settings: Settings) -> DataPlaneApp:
    registry = load_registry(settings.providers_override)  # a bad override fails the start, not a request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, "keyrail-ingress")
        js = nc.jetstream()
        await ensure_streams(js)
        history = ChangeHistory()
        projection = ConfigProjection(js, observer=history)
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
            activity=ActivityPublisher(js, settings.activity_buffer_rows),
            credentials=CredentialStore(settings),
            access_log=access_log,
            stream_inboxes=stream_inboxes,
            registry=registry,
            history=history,
        )
        log.info("ingress ready on http://%s:%d", settings.host, settings.port)
        yield
        await app.state.ctx.activity.close()
        await close_bus(nc)
        await access_log.close()

    return DataPlaneApp(build_api(lifespan), DATA_PLANE)  # type: ignore[arg-type]


def build_api(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None) -> FastAPI:
    """The FastAPI app behind the fast path: admin API, /healthz, /metrics and the API docs.

    FastAPI's own OpenAPI generation and docs pages are off: ours (openapi.py) is generated
    from the msgspec types the handlers use, built here once and served as cached bytes.
    """
    app = FastAPI(
        title="Keyrail",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        exception_handlers={404: not_found, 405: method_not_allowed, 500: internal_error},
    )
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    app.add_api_route("/openapi.json", openapi_json, methods=["GET"])
    app.add_api_route("/docs", api_reference, methods=["GET"])
    for prefix in ("/v1", "/api/v1"):
        app.add_api_route(f"{prefix}/models", list_models, methods=["GET"])
    app.include_router(admin_routes.router)
    for path in DATA_PLANE:
        # Reached only for methods other than POST (the fast path takes POSTs): a clear 405. Not
        # an operation of the API, so not in any schema (it also gave FastAPI duplicate ids).
        app.add_api_route(
            path,
            method_not_allowed_route,
            methods=["GET", "PUT", "DELETE", "PATCH"],
            include_in_schema=False,
        )
    docs = ApiDocs.build()
    app.state.api_docs = docs
    app.openapi_schema = docs.document
    app.openapi = lambda: docs.document  # type: ignore[method-assign]
    return app


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
