"""Questions the admin API asks the audit service (it owns the activity log's ClickHouse)."""

from __future__ import annotations

import logging

import msgspec
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_common.messages import KeyUsageQuery, QueryResult, encode
from keyrail_ingress.context import IngressContext
from keyrail_ingress.responses import error

log = logging.getLogger("keyrail.ingress.admin")

_query_result_decoder = msgspec.msgpack.Decoder(QueryResult)
_KEY_USAGE_TIMEOUT_S = 2.0  # a key list waits this long for "last used", then shows null


async def ask_audit(
    ctx: IngressContext, subject: str, payload: bytes, timeout_s: float = 30
) -> QueryResult | Response:
    try:
        reply = await ctx.nc.request(subject, payload, timeout=timeout_s)
    except (NoRespondersError, NatsTimeout):
        return error(
            503, "The audit service is not answering; start it with: keyrail audit", "audit_unavailable"
        )
    result = _query_result_decoder.decode(reply.data)
    if result.unavailable:
        return error(503, result.error, "store_unavailable")
    if result.error:
        return error(400, result.error, "query_failed")
    return result


async def last_used(ctx: IngressContext, org_id: str, key_ids: list[str]) -> dict[str, str]:
    """When each key last served a request, from the activity log: no write on the hot path, at
    the price of the audit service's batching delay. Empty when the audit service is not there:
    the key list still answers, with `last_used_at` null."""
    if not key_ids:
        return {}
    query = KeyUsageQuery(org_id=org_id, api_key_ids=key_ids)
    result = await ask_audit(ctx, subjects.AUDIT_KEY_USAGE, encode(query), _KEY_USAGE_TIMEOUT_S)
    if isinstance(result, Response):
        log.warning("no last-used times for the key list: the audit service did not answer")
        return {}
    return {str(key_id): str(when) for key_id, when in result.rows}
