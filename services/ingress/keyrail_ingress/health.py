"""`GET /healthz`: 200 only when NATS is connected and every component answers a ping."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_ingress.context import IngressContext
from keyrail_ingress.responses import json_response

_PING_TIMEOUT_S = 1.0


async def _answers(ctx: IngressContext, component: str) -> bool:
    try:
        await ctx.nc.request(subjects.health(component), b"", timeout=_PING_TIMEOUT_S)
    except Exception:
        return False
    return True


async def healthz(request: Request) -> Response:
    ctx: IngressContext = request.app.state.ctx
    if not ctx.nc.is_connected:
        return json_response({"status": "unavailable", "missing": ["nats"]}, 503)
    pools = ctx.settings.health_pools or tuple(ctx.registry.pools())
    components = ["router", "audit", *(f"worker.{pool}" for pool in pools)]
    answers = await asyncio.gather(*(_answers(ctx, c) for c in components))
    missing = [c for c, ok in zip(components, answers, strict=True) if not ok]
    if missing:
        return json_response({"status": "unavailable", "missing": missing}, 503)
    return json_response({"status": "ok", "components": components})
