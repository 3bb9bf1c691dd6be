"""`GET /admin/v1/activity`: its filters as the audit service's query, 400s naming the parameter,
pages and their opaque cursors, and the SQL the audit service runs (parameters only)."""

from __future__ import annotations

from typing import Any

import pytest

from keyrail_audit.store import activity_sql
from keyrail_common.clickhouse import ACTIVITY_COLUMNS
from keyrail_common.messages import ActivityCursor, ActivityQuery, QueryResult
from keyrail_ingress.admin.activity import activity_page, activity_query
from keyrail_ingress.admin.query_params import BadParam, decode_cursor, encode_cursor


def test_every_filter_reaches_the_query() -> None:
    cursor = encode_cursor(
        ActivityCursor(ts_ms=1_764_618_465_123, request_id="req_9", kind="attempt", attempt=2)
    )
    params = {
        "request_id": "req_1",
        "project_id": "proj_a",
        "provider_slug": "openai-prod",
        "model": "gpt-4o-mini",
        "status": "error",
        "failure_class": "rate_limit",
        "tag": "batch",
        "since": "2026-12-01T00:00:00Z",
        "until": "1796169600",
        "limit": "25",
        "cursor": cursor,
    }

    query = activity_query("org_1", params)

    assert query == ActivityQuery(
        org_id="org_1",
        request_id="req_1",
        project_id="proj_a",
        provider_slug="openai-prod",
        model="gpt-4o-mini",
        status="error",
        failure_class="rate_limit",
        tag="batch",
        since_ms=1_796_083_200_000,
        until_ms=1_796_169_600_000,
        limit=25,
        after=ActivityCursor(ts_ms=1_764_618_465_123, request_id="req_9", kind="attempt", attempt=2),
    )


def test_no_filters_is_the_newest_hundred() -> None:
    assert activity_query("org_1", {}) == ActivityQuery(org_id="org_1", limit=100)


@pytest.mark.parametrize(
    ("params", "param", "says"),
    [
        ({"limit": "lots"}, "limit", "from 1 to 1000"),
        ({"limit": "0"}, "limit", "from 1 to 1000"),
        ({"limit": "1001"}, "limit", "from 1 to 1000"),
        ({"status": "failed"}, "status", "one of error, ok"),
        ({"failure_class": "oops"}, "failure_class", "rate_limit"),
        ({"since": "yesterday"}, "since", "ISO 8601"),
        ({"until": "2026-13-01"}, "until", "ISO 8601"),
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "until", "later than"),
        ({"cursor": "not-a-cursor"}, "cursor", "next_cursor"),
        ({"cursor": encode_cursor(ActivityQuery(org_id="x"))}, "cursor", "next_cursor"),
        ({"slug": "openai-prod"}, "slug", "provider_slug"),
    ],
)
def test_a_bad_filter_names_the_parameter(params: dict[str, str], param: str, says: str) -> None:
    with pytest.raises(BadParam) as refused:
        activity_query("org_1", params)

    assert refused.value.param == param and says in refused.value.message


def test_a_cursor_survives_the_round_trip_and_is_url_safe() -> None:
    position = ActivityCursor(ts_ms=1_764_618_465_123, request_id="req_019a", kind="request", attempt=0)

    raw = encode_cursor(position)

    assert decode_cursor(raw, ActivityCursor) == position
    assert set(raw) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


COLUMNS = list(ACTIVITY_COLUMNS)  # what the audit service's SELECT * answers


def row(request_id: str, ts: str, cost: Any = "0.0000125") -> list[Any]:
    values: dict[str, Any] = dict.fromkeys(COLUMNS, 0)
    values.update(
        request_id=request_id,
        kind="request",
        attempt=1,
        ts=ts,
        org_id="org_1",
        project_id="proj_a",
        api_key_id="key_1",
        provider="openai",
        provider_slug="openai-prod",
        model="gpt-4o-mini",
        status="ok",
        error_class="",
        error_message="",
        cost_usd=cost,
        tags=[],
        usage_source="reported",
        config_id="",
        virtual_model="",
        cost_status="priced" if cost is not None else "unpriced",
        price_version="",
    )
    return [values[c] for c in COLUMNS]


def test_a_full_page_names_its_last_row_as_the_cursor() -> None:
    result = QueryResult(
        columns=COLUMNS,
        rows=[
            row("req_3", "2026-12-01T19:41:05.300000+00:00"),
            row("req_2", "2026-12-01T19:41:05.200000+00:00", None),
            row("req_1", "2026-12-01T19:41:05.100000+00:00"),
        ],
    )

    page = activity_page(2, result)

    assert [r.request_id for r in page.data] == ["req_3", "req_2"]
    assert page.data[1].cost_usd is None and page.data[1].cost_status == "unpriced"
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor, ActivityCursor) == ActivityCursor(
        ts_ms=1_796_154_065_200, request_id="req_2", kind="request", attempt=1
    )


def test_the_last_page_has_no_cursor() -> None:
    result = QueryResult(columns=COLUMNS, rows=[row("req_1", "2026-12-01T19:41:05.100000+00:00")])

    assert activity_page(2, result).next_cursor is None


def test_the_sql_binds_every_value_and_pages_by_the_whole_key() -> None:
    query = activity_query(
        "org_1",
        {
            "project_id": "p'; DROP TABLE keyrail.activity; --",
            "tag": "t",
            "status": "ok",
            "cursor": encode_cursor(ActivityCursor(ts_ms=5, request_id="req_1", kind="request", attempt=1)),
        },
    )
    query.project_ids = ["proj_a"]

    sql, parameters = activity_sql(query)

    assert "DROP" not in sql and parameters["project_id"] == "p'; DROP TABLE keyrail.activity; --"
    assert "project_id = {project_id:String}" in sql and "has(tags, {tag:String})" in sql
    assert "status = {status:String}" in sql and "project_id IN {project_ids:Array(String)}" in sql
    assert "(ts, request_id, kind, attempt) <" in sql
    assert sql.endswith("ORDER BY ts DESC, request_id DESC, kind DESC, attempt DESC LIMIT {limit:UInt32}")
    assert (parameters["after_ts"], parameters["after_request"], parameters["after_attempt"]) == (
        5,
        "req_1",
        1,
    )
