"""`GET /admin/v1/integrations/{slug}/health`: the circuit breakers of an integration's models.

The routers hold the breakers (folded from the activity stream, the same on every replica), so
the ingress asks any one of them.
"""

from __future__ import annotations

import msgspec
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_common.config_events import IntegrationCreated
from keyrail_common.messages import CircuitReports
from keyrail_ingress.admin.command import Command, admin_route
from keyrail_ingress.admin.integrations import load_integration
from keyrail_ingress.admin.views import iso
from keyrail_ingress.admin_types import Circuit, IntegrationHealth
from keyrail_ingress.responses import error, json_response

_reports_decoder = msgspec.msgpack.Decoder(CircuitReports)
_ROUTER_TIMEOUT_S = 2.0


@admin_route("GET", "/integrations/{slug}/health", "integration.read", load=load_integration)
async def integration_health(c: Command[IntegrationCreated, None]) -> Response:
    slug = c.record.provider_slug
    try:
        reply = await c.ctx.nc.request(subjects.ROUTER_BREAKERS, slug.encode(), timeout=_ROUTER_TIMEOUT_S)
    except (NoRespondersError, NatsTimeout):
        return error(503, "No router is answering; start one with: keyrail router", "router_unavailable")
    reports = _reports_decoder.decode(reply.data)
    circuits = [
        Circuit(
            model=r.model,
            state=r.state,
            failures=r.failures,
            last_failure_class=r.last_failure_class,
            last_failure_message=r.last_failure_message,
            last_failure_at=iso(r.last_failure_at or None),
            opened_at=iso(r.opened_at or None),
            next_probe_at=iso(r.next_probe_at or None),
        )
        for r in reports.circuits
    ]
    return json_response(IntegrationHealth(provider_slug=slug, data=circuits))
