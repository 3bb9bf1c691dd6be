"""`/admin/v1/activity` and `/admin/v1/sql`: the activity log, through the audit service.

A project role reads its own projects' rows only: the query the audit service runs is limited to
them (`ActivityQuery.project_ids`). Free SQL cannot be limited that way, so it is for owners.
"""

from __future__ import annotations

import time

import msgspec
from starlette.responses import Response

from keyrail_common import subjects
from keyrail_common.messages import ActivityQuery, SqlQuery, encode
from keyrail_ingress.admin.audit import ask_audit
from keyrail_ingress.admin.command import Command, admin_route, forbidden
from keyrail_ingress.admin_types import ActivityEntry, ActivityList, SqlResult
from keyrail_ingress.rbac import Target, denial
from keyrail_ingress.responses import error, json_response


def _activity_view(columns: list[str], row: list[object]) -> ActivityEntry:
    return msgspec.convert(dict(zip(columns, row, strict=True)), ActivityEntry)


@admin_route("GET", "/activity", "activity.read")
async def activity(c: Command[None, None]) -> Response:
    params = c.request.query_params
    try:
        limit = int(params.get("limit", "100"))
    except ValueError:
        return error(400, "'limit' must be an integer.", "invalid_value", "limit")
    project = params.get("project", "")
    visible = c.visible()
    if visible is not None and project and project not in visible:
        target = Target(projects=frozenset({project}), label=f"project '{project}'")
        return forbidden(denial(c.caller, c.rule, target))
    if visible is not None and not visible:
        return json_response(ActivityList(data=[], next_cursor=None))  # no project: no rows
    query = ActivityQuery(
        org_id=c.org_id,
        request_id=params.get("request_id", ""),
        project_id=project,
        provider_slug=params.get("slug", ""),
        limit=limit,
        project_ids=sorted(visible) if visible is not None else [],
    )
    result = await ask_audit(c.ctx, subjects.AUDIT_ACTIVITY_QUERY, encode(query))
    if isinstance(result, Response):
        return result
    rows = [_activity_view(result.columns, row) for row in result.rows]
    return json_response(ActivityList(data=rows, next_cursor=None))


@admin_route("POST", "/sql", "sql.query", body=SqlQuery)
async def sql(c: Command[None, SqlQuery]) -> Response:
    """Read-only SQL over the activity log (what `keyrail sql` calls on the embedded default)."""
    started = time.perf_counter()
    result = await ask_audit(c.ctx, subjects.AUDIT_SQL, encode(c.body))
    if isinstance(result, Response):
        return result
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    return json_response(SqlResult(columns=result.columns, rows=result.rows, elapsed_ms=elapsed_ms))
