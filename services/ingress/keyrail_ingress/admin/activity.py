"""`/admin/v1/activity` and `/admin/v1/sql`: the activity log, through the audit service.

A project role reads its own projects' rows only: the query the audit service runs is limited to
them (`ActivityQuery.project_ids`). Pages are newest first in the order (ts, request_id, kind,
attempt), which no two rows share, so paging with `next_cursor` never repeats or skips a row.
Free SQL cannot be limited to projects, so it is for owners.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

import msgspec
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_common.failures import FailureClass
from keyrail_common.messages import ActivityCursor, ActivityQuery, QueryResult, SqlQuery, encode
from keyrail_ingress.admin import query_params
from keyrail_ingress.admin.audit import ask_audit
from keyrail_ingress.admin.command import Command, admin_route, forbidden
from keyrail_ingress.admin.query_params import BadParam, only_known
from keyrail_ingress.admin_types import ActivityEntry, ActivityList, SqlResult
from keyrail_ingress.rbac import Target, denial
from keyrail_ingress.responses import json_response

_ACTIVITY_PARAMS = (
    "request_id",
    "project_id",
    "provider_slug",
    "model",
    "status",
    "failure_class",
    "tag",
    "since",
    "until",
    "limit",
    "cursor",
)
_STATUSES = ("ok", "error")


def activity_query(org_id: str, params: Mapping[str, str]) -> ActivityQuery:
    """The filters of `GET /activity` as the audit service's query; `BadParam` for a bad one."""
    only_known(params, _ACTIVITY_PARAMS)
    since_ms, until_ms = query_params.time_ms(params, "since"), query_params.time_ms(params, "until")
    if since_ms and until_ms and since_ms >= until_ms:
        raise BadParam("until", "'until' must be later than 'since'.")
    cursor = params.get("cursor", "")
    return ActivityQuery(
        org_id=org_id,
        request_id=params.get("request_id", ""),
        project_id=params.get("project_id", ""),
        provider_slug=params.get("provider_slug", ""),
        model=params.get("model", ""),
        status=query_params.one_of(params, "status", _STATUSES),
        failure_class=query_params.one_of(params, "failure_class", (c.value for c in FailureClass)),
        tag=params.get("tag", ""),
        since_ms=since_ms,
        until_ms=until_ms,
        limit=query_params.limit(params),
        after=query_params.decode_cursor(cursor, ActivityCursor) if cursor else None,
    )


def activity_page(limit: int, result: QueryResult) -> ActivityList:
    """The rows as entries; the audit service was asked for one more than `limit`, so a next
    page exists exactly when it sent that many."""
    rows = [
        msgspec.convert(dict(zip(result.columns, row, strict=True)), ActivityEntry)
        for row in result.rows[: limit + 1]
    ]
    if len(rows) <= limit:
        return ActivityList(data=rows, next_cursor=None)
    last = rows[limit - 1]
    ts_ms = round(datetime.fromisoformat(last.ts).timestamp() * 1000)
    position = ActivityCursor(ts_ms=ts_ms, request_id=last.request_id, kind=last.kind, attempt=last.attempt)
    return ActivityList(data=rows[:limit], next_cursor=query_params.encode_cursor(position))


@admin_route("GET", "/activity", "activity.read")
async def activity(c: Command[None, None]) -> Response:
    try:
        query = activity_query(c.org_id, c.request.query_params)
    except BadParam as exc:
        return query_params.bad_param(exc)
    visible = c.visible()
    if visible is not None and query.project_id and query.project_id not in visible:
        target = Target(projects=frozenset({query.project_id}), label=f"project '{query.project_id}'")
        return forbidden(denial(c.caller, c.rule, target))
    if visible is not None and not visible:
        return json_response(ActivityList(data=[], next_cursor=None))  # no project: no rows
    limit = query.limit
    query.limit = limit + 1
    query.project_ids = sorted(visible) if visible is not None else []
    result = await ask_audit(c.ctx, subjects.AUDIT_ACTIVITY_QUERY, encode(query))
    if isinstance(result, Response):
        return result
    return json_response(activity_page(limit, result))


@admin_route("POST", "/sql", "sql.query", body=SqlQuery)
async def sql(c: Command[None, SqlQuery]) -> Response:
    """Read-only SQL over the activity log (what `keyrail sql` calls on the embedded default)."""
    started = time.perf_counter()
    result = await ask_audit(c.ctx, subjects.AUDIT_SQL, encode(c.body))
    if isinstance(result, Response):
        return result
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    return json_response(SqlResult(columns=result.columns, rows=result.rows, elapsed_ms=elapsed_ms))
