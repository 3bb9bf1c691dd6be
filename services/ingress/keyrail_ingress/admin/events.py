"""`GET /admin/v1/events`: the change history (admin/history.py), filtered."""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.responses import Response

from keyrail_ingress.admin.command import Command, admin_route
from keyrail_ingress.admin.history import AGGREGATES
from keyrail_ingress.admin.query_params import (
    MAX_LIMIT,
    BadParam,
    bad_param,
    decode_cursor,
    encode_cursor,
    parse_time,
)
from keyrail_ingress.admin_types import ChangeList
from keyrail_ingress.responses import error, json_response


@admin_route("GET", "/events", "events.read")
async def list_events(c: Command[None, None]) -> Response:
    params = c.request.query_params
    aggregate, _, aggregate_id = params.get("aggregate", "").partition("/")
    if aggregate and aggregate not in AGGREGATES:
        return error(
            400,
            f"'aggregate' must be one of {', '.join(AGGREGATES)}, optionally followed by /<id> "
            f"(e.g. integration/openai-prod); got {aggregate!r}.",
            "invalid_value",
            "aggregate",
        )
    since = parse_time(params.get("since", "0"))
    if since is None:
        return error(
            400, "'since' must be ISO 8601 (2026-12-01T19:30:00Z) or Unix seconds.", "invalid_value", "since"
        )
    try:
        limit = min(max(int(params.get("limit", "100")), 1), MAX_LIMIT)
    except ValueError:
        return error(400, "'limit' must be an integer.", "invalid_value", "limit")
    cursor = params.get("cursor", "")
    try:
        before_seq = decode_cursor(cursor, ChangeCursor).seq if cursor else 0
    except BadParam as exc:
        return bad_param(exc)
    found = c.ctx.history.query(
        c.visible(), aggregate, aggregate_id, params.get("actor", ""), since, limit, before_seq
    )
    # A full page may have more behind it: the cursor is the oldest change returned (its sequence).
    next_cursor = encode_cursor(ChangeCursor(found[-1].seq)) if len(found) == limit else None
    return json_response(ChangeList(data=found, next_cursor=next_cursor))


class ChangeCursor(msgspec.Struct, array_like=True, frozen=True):
    """Where a page of the change history ended: its oldest change's stream sequence."""

    seq: Annotated[int, msgspec.Meta(ge=1)]
