"""`GET /healthz`: 200 only when NATS is connected and every component answers a ping."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_ingress.context import IngressContext
from keyrail_ingress.responses import json_response

_PING_TIMEOUT_S = 1.0


async def _answer(ctx: IngressContext, component: str) -> bytes | None:
    try:
        reply = await ctx.nc.request(subjects.health(component), b"", timeout=_PING_TIMEOUT_S)
    except Exception:
        return None
    return bytes(reply.data)


def reported(answer: bytes | None) -> dict[str, Any] | None:
    """What a component said about itself (a JSON object), or None for a plain `ok`."""
    if not answer or answer == b"ok":
        return None
    try:
        value = msgspec.json.decode(answer)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


async def healthz(request: Request) -> Response:
    ctx: IngressContext = request.app.state.ctx
    if not ctx.nc.is_connected:
        return json_response({"status": "unavailable", "missing": ["nats"]}, 503)
    pools = ctx.settings.health_pools or tuple(ctx.registry.pools())
    components = ["router", "audit", *(f"worker.{pool}" for pool in pools)]
    answers = await asyncio.gather(*(_answer(ctx, c) for c in components))
    missing = [c for c, answer in zip(components, answers, strict=True) if answer is None]
    # Detail informs (the audit service's ingestion backlog); it never makes the gateway unready.
    detail = {c: d for c, a in zip(components, answers, strict=True) if (d := reported(a)) is not None}
    if missing:
        return json_response({"status": "unavailable", "missing": missing, "detail": detail}, 503)
    return json_response({"status": "ok", "components": components, "detail": detail})
