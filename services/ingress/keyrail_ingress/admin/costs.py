"""`GET /admin/v1/costs`: requests, tokens, cost, unpriced count and error rate per group, over
whole UTC days, from the audit service's daily rollups. A project role sees its own projects'."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from keyrail_common import subjects
from keyrail_common.messages import CostGroupBy, CostQuery, QueryResult, encode
from keyrail_ingress.admin import query_params
from keyrail_ingress.admin.audit import ask_audit
from keyrail_ingress.admin.command import Command, admin_route
from keyrail_ingress.admin.query_params import BadParam
from keyrail_ingress.admin_types import CostGroup, CostReport, CostTokens
from keyrail_ingress.responses import json_response

DEFAULT_DAYS = 30
_PARAMS = ("group_by", "since", "until")


def _day(params: Mapping[str, str], name: str) -> date | None:
    ms = query_params.time_ms(params, name)
    return datetime.fromtimestamp(ms / 1000, tz=UTC).date() if ms else None


def cost_query(org_id: str, params: Mapping[str, str], today: date) -> CostQuery:
    """The parameters of `GET /costs` as the audit service's query; `BadParam` for a bad one."""
    query_params.only_known(params, _PARAMS)
    group_by = query_params.one_of(params, "group_by", (g.value for g in CostGroupBy))
    if not group_by:
        raise BadParam(
            "group_by", f"'group_by' is required: one of {', '.join(g.value for g in CostGroupBy)}."
        )
    since = _day(params, "since") or today - timedelta(days=DEFAULT_DAYS - 1)
    until = _day(params, "until")
    if until is not None and until <= since:
        raise BadParam("until", "'until' must be a later day than 'since' (whole UTC days).")
    return CostQuery(
        org_id=org_id,
        group_by=CostGroupBy(group_by),
        since_day=since.isoformat(),
        until_day=until.isoformat() if until else "",
    )


def cost_report(query: CostQuery, result: QueryResult) -> CostReport:
    groups = []
    for values in result.rows:
        row: dict[str, Any] = dict(zip(result.columns, values, strict=True))
        requests, errors = int(row["requests"]), int(row["errors"])
        groups.append(
            CostGroup(
                key=str(row["key"]),
                requests=requests,
                errors=errors,
                error_rate=round(errors / requests, 6) if requests else 0.0,
                unpriced=int(row["unpriced"]),
                tokens=CostTokens(
                    prompt=int(row["prompt_tokens"]),
                    completion=int(row["completion_tokens"]),
                    cached=int(row["cached_tokens"]),
                    cache_write=int(row["cache_write_tokens"]),
                    reasoning=int(row["reasoning_tokens"]),
                ),
                cost_usd=Decimal(str(row["cost_usd"])),  # the audit service sends decimals as text
            )
        )
    return CostReport(
        group_by=query.group_by.value,
        since=query.since_day,
        until=query.until_day or None,
        data=groups,
        next_cursor=None,
    )


@admin_route("GET", "/costs", "costs.read")
async def costs(c: Command[None, None]) -> Response:
    try:
        query = cost_query(
            c.org_id, c.request.query_params, datetime.fromtimestamp(time.time(), tz=UTC).date()
        )
    except BadParam as exc:
        return query_params.bad_param(exc)
    visible = c.visible()
    if visible is not None and not visible:  # no project: nothing to count
        return json_response(cost_report(query, QueryResult()))
    query.project_ids = sorted(visible) if visible is not None else []
    result = await ask_audit(c.ctx, subjects.AUDIT_COSTS, encode(query))
    if isinstance(result, Response):
        return result
    return json_response(cost_report(query, result))
