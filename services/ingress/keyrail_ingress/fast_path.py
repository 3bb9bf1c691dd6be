"""The ASGI entry point: data-plane POSTs go straight to their handlers, the rest to FastAPI.

FastAPI wraps every request in about ten middleware and routing layers (telemetry, error and
exception middleware, body limits, dependency resolution). The admin API keeps all of that; the
hot path skips it and pays only for the handler itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from keyrail_ingress.responses import error

log = logging.getLogger("keyrail.ingress")

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
Handler = Callable[[Request], Awaitable[ASGIApp]]  # returns a response: any ASGI callable


class DataPlaneApp:
    def __init__(self, app: ASGIApp, routes: dict[str, Handler]) -> None:
        self._app = app
        self._routes = routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        handler = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        scope["app"] = self._app  # handlers reach the shared context through request.app.state
        response: ASGIApp
        try:
            response = await handler(Request(scope, receive))
        except Exception:
            log.exception("data-plane handler failed")
            response = error(
                500, "Keyrail failed to handle this request; the error is logged.", "internal_error"
            )
        await response(scope, receive, send)
