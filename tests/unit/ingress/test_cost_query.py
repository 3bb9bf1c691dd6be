"""`GET /admin/v1/costs`: its parameters as the audit service's query, 400s naming the parameter,
the report built from the rollup's sums, and the SQL (fixed group columns, bound values)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from keyrail_audit.store import costs_sql
from keyrail_common.messages import CostGroupBy, CostQuery, QueryResult
from keyrail_ingress.admin.costs import cost_query, cost_report
from keyrail_ingress.admin.query_params import BadParam
from keyrail_ingress.admin_types import CostTokens

TODAY = date(2026, 12, 1)


def test_the_default_period_is_the_last_thirty_days_through_today() -> None:
    assert cost_query("org_1", {"group_by": "slug"}, TODAY) == CostQuery(
        org_id="org_1", group_by=CostGroupBy.SLUG, since_day="2026-11-02"
    )


def test_times_are_whole_utc_days() -> None:
    query = cost_query(
        "org_1", {"group_by": "tag", "since": "2026-11-03T22:15:00Z", "until": "2026-11-10"}, TODAY
    )

    assert (query.group_by, query.since_day, query.until_day) == (CostGroupBy.TAG, "2026-11-03", "2026-11-10")


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "group_by"),
        ({"group_by": "provider"}, "group_by"),
        ({"group_by": "day", "since": "last week"}, "since"),
        ({"group_by": "day", "since": "2026-11-10", "until": "2026-11-10T23:00:00Z"}, "until"),
        ({"group_by": "day", "by": "slug"}, "by"),
    ],
)
def test_a_bad_parameter_is_named(params: dict[str, str], param: str) -> None:
    with pytest.raises(BadParam) as refused:
        cost_query("org_1", params, TODAY)

    assert refused.value.param == param


def test_the_report_has_exact_costs_and_the_error_rate() -> None:
    columns = [
        "key",
        "requests",
        "errors",
        "unpriced",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
    ]
    result = QueryResult(
        columns=columns, rows=[["openai-prod", 8, 2, 1, 100, 50, 10, 5, 3, "0.000123456789012345"]]
    )
    query = CostQuery(org_id="org_1", group_by=CostGroupBy.SLUG, since_day="2026-11-02")

    report = cost_report(query, result)

    (group,) = report.data
    assert (group.key, group.requests, group.errors, group.error_rate, group.unpriced) == (
        "openai-prod",
        8,
        2,
        0.25,
        1,
    )
    assert group.tokens == CostTokens(prompt=100, completion=50, cached=10, cache_write=5, reasoning=3)
    assert group.cost_usd == Decimal("0.000123456789012345")
    assert (report.group_by, report.since, report.until) == ("slug", "2026-11-02", None)


@pytest.mark.parametrize(
    ("group_by", "table", "column"),
    [
        (CostGroupBy.SLUG, "keyrail.costs_daily", "provider_slug"),
        (CostGroupBy.MODEL, "keyrail.costs_daily", "model"),
        (CostGroupBy.PROJECT, "keyrail.costs_daily", "project_id"),
        (CostGroupBy.DAY, "keyrail.costs_daily", "toString(day)"),
        (CostGroupBy.TAG, "keyrail.costs_daily_by_tag", "tag"),
    ],
)
def test_the_sql_reads_the_rollup_of_the_group(group_by: CostGroupBy, table: str, column: str) -> None:
    query = CostQuery(
        org_id="org_1", group_by=group_by, since_day="2026-11-02", until_day="2026-12-01", project_ids=["p"]
    )

    sql, parameters = costs_sql(query)

    assert sql.startswith(f"SELECT {column} AS key,") and f"FROM {table} WHERE" in sql
    assert "project_id IN {project_ids:Array(String)}" in sql and "day < toDate({until_day:String})" in sql
    assert parameters == {
        "org_id": "org_1",
        "since_day": "2026-11-02",
        "until_day": "2026-12-01",
        "project_ids": ["p"],
    }
