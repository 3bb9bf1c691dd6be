"""The activity table in ClickHouse: batch inserts and the queries the admin API needs.

chDB runs in this process and is not thread-safe, so every call goes through one thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from operator import attrgetter
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.insert import InsertContext

from keyrail_common.clickhouse import ACTIVITY_COLUMNS, Retention, apply_retention, ensure_schema, open_client
from keyrail_common.messages import (
    ActivityQuery,
    ActivityRow,
    CostGroupBy,
    CostQuery,
    KeyUsageQuery,
    QueryResult,
)

# The insert's columns as ActivityRow attributes, in ACTIVITY_COLUMNS order: `ts` is written as
# the DateTime64(3) ticks it is (milliseconds), `stream` as the 0/1 a bool is.
_ROW_FIELDS = tuple("ts_ms" if column == "ts" else column for column in ACTIVITY_COLUMNS)


class StoreState(enum.StrEnum):
    """The store as the audit service's health answer reports it (the rows wait in JetStream
    unless it is `ok`)."""

    OK = "ok"
    UNAVAILABLE = "unavailable"  # not opened yet: the server unreachable, or chDB's data dir held
    FAILING = "failing"  # opened, but the last insert failed


class StoreUnavailable(Exception):
    """A query before ClickHouse could be opened (the audit service keeps trying)."""


def column_values(rows: list[ActivityRow]) -> list[list[Any]]:
    """The rows as the column lists of a column-oriented insert: no per-row Python loop, which
    was most of the audit service's CPU per row (a row-oriented insert is transposed anyway)."""
    return [list(map(attrgetter(field), rows)) for field in _ROW_FIELDS]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):  # exact, as text: 0.0000086, not 8.6E-6 or a float
        return format(value.normalize(), "f")
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# Equality filters of the activity API: query field → column. Values only ever reach ClickHouse
# as bound parameters, never spliced into the SQL text.
_EQUALS = {
    "request_id": "request_id",
    "project_id": "project_id",
    "provider_slug": "provider_slug",
    "model": "model",
    "status": "status",
    "failure_class": "error_class",
}
_MAX_ROWS = 1001  # a page of 1000, and one more to tell whether another page follows


def activity_sql(query: ActivityQuery) -> tuple[str, dict[str, Any]]:
    """The parameterised SELECT for one page of the activity log."""
    filters = ["org_id = {org_id:String}"]
    parameters: dict[str, Any] = {"org_id": query.org_id, "limit": max(1, min(query.limit, _MAX_ROWS))}
    for field, column in _EQUALS.items():
        value = getattr(query, field)
        if value:
            filters.append(f"{column} = {{{field}:String}}")
            parameters[field] = value
    if query.tag:
        filters.append("has(tags, {tag:String})")
        parameters["tag"] = query.tag
    if query.since_ms:
        filters.append("ts >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')")
        parameters["since_ms"] = query.since_ms
    if query.until_ms:
        filters.append("ts < fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')")
        parameters["until_ms"] = query.until_ms
    if query.project_ids:
        filters.append("project_id IN {project_ids:Array(String)}")
        parameters["project_ids"] = query.project_ids
    if query.after is not None:
        filters.append(
            "(ts, request_id, kind, attempt) < (fromUnixTimestamp64Milli({after_ts:Int64}, 'UTC'), "
            "{after_request:String}, {after_kind:String}, {after_attempt:UInt16})"
        )
        parameters.update(
            after_ts=query.after.ts_ms,
            after_request=query.after.request_id,
            after_kind=query.after.kind,
            after_attempt=query.after.attempt,
        )
    sql = (
        f"SELECT * FROM keyrail.activity FINAL WHERE {' AND '.join(filters)} "
        "ORDER BY ts DESC, request_id DESC, kind DESC, attempt DESC LIMIT {limit:UInt32}"
    )
    return sql, parameters


# group_by → (rollup table, the column its groups are named by). Only these fixed names reach the
# SQL text; every value is a bound parameter.
_COST_GROUPS = {
    CostGroupBy.SLUG: ("keyrail.costs_daily", "provider_slug"),
    CostGroupBy.MODEL: ("keyrail.costs_daily", "model"),
    CostGroupBy.PROJECT: ("keyrail.costs_daily", "project_id"),
    CostGroupBy.DAY: ("keyrail.costs_daily", "toString(day)"),
    CostGroupBy.TAG: ("keyrail.costs_daily_by_tag", "tag"),
}


def costs_sql(query: CostQuery) -> tuple[str, dict[str, Any]]:
    """The parameterised SELECT of one cost report: sums over the daily rollup's rows."""
    table, group = _COST_GROUPS[query.group_by]
    filters = ["org_id = {org_id:String}", "day >= toDate({since_day:String})"]
    parameters: dict[str, Any] = {"org_id": query.org_id, "since_day": query.since_day}
    if query.until_day:
        filters.append("day < toDate({until_day:String})")
        parameters["until_day"] = query.until_day
    if query.project_ids:
        filters.append("project_id IN {project_ids:Array(String)}")
        parameters["project_ids"] = query.project_ids
    sql = (
        f"SELECT {group} AS key, sum(requests) AS requests, sum(errors) AS errors, "
        "sum(unpriced) AS unpriced, sum(prompt_tokens) AS prompt_tokens, "
        "sum(completion_tokens) AS completion_tokens, sum(cached_tokens) AS cached_tokens, "
        "sum(cache_write_tokens) AS cache_write_tokens, sum(reasoning_tokens) AS reasoning_tokens, "
        f"sum(cost_usd) AS cost_usd FROM {table} WHERE {' AND '.join(filters)} "
        "GROUP BY key ORDER BY key"
    )
    return sql, parameters


class ActivityStore:
    def __init__(self, url: str, retention: Retention | None = None) -> None:
        self._url = url
        self._retention = retention or Retention()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self._client: Client | None = None
        self._insert_context: InsertContext | None = None
        # Analyst SQL runs on its own client: chDB keeps a query's `readonly` setting for the
        # rest of the session, which would make every later insert fail.
        self._reader: Client | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> None:
        client = open_client(self._url)
        try:
            ensure_schema(client)
            apply_retention(client, self._retention)
            # Built once: without it every insert would first ask ClickHouse to DESCRIBE the table.
            self._insert_context = client.create_insert_context(
                "keyrail.activity", list(ACTIVITY_COLUMNS), column_oriented=True
            )
            self._reader = open_client(self._url)
        except Exception:
            client.close()  # chDB: let go of the data dir before the next attempt opens it
            raise
        self._client = client

    async def open(self) -> None:
        """Connect, migrate the schema and set the retention; raises while ClickHouse cannot be
        reached (a server down, or chDB's data dir held by another process)."""
        await self._run(self._open)

    def _writer(self) -> Client:
        if self._client is None:
            raise StoreUnavailable("ClickHouse is not reachable yet")
        return self._client

    def _insert(self, rows: list[ActivityRow]) -> None:
        assert self._insert_context is not None  # built with the client
        self._writer().insert(data=column_values(rows), context=self._insert_context)

    async def insert(self, rows: list[ActivityRow]) -> None:
        await self._run(self._insert, rows)

    def _not_yet_written(self, rows: list[ActivityRow]) -> list[ActivityRow]:
        written = (
            self._writer()
            .query(
                "SELECT org_id, request_id, kind, attempt FROM keyrail.activity "
                "WHERE request_id IN {ids:Array(String)}",
                parameters={"ids": sorted({r.request_id for r in rows})},
            )
            .result_rows
        )
        keys = {tuple(key) for key in written}
        return [r for r in rows if (r.org_id, r.request_id, r.kind, r.attempt) not in keys]

    async def not_yet_written(self, rows: list[ActivityRow]) -> list[ActivityRow]:
        """The rows ClickHouse does not hold yet (for a redelivered batch, before its insert)."""
        return await self._run(self._not_yet_written, rows)

    def _select(
        self, sql: str, parameters: dict[str, Any], settings: dict[str, Any], analyst: bool = False
    ) -> QueryResult:
        client = self._reader if analyst else self._client
        if client is None:
            raise StoreUnavailable("ClickHouse is not reachable yet")
        result = client.query(sql, parameters=parameters, settings=settings)
        return QueryResult(
            columns=list(result.column_names),
            rows=[[_jsonable(v) for v in r] for r in result.result_rows],
        )

    async def activity(self, query: ActivityQuery) -> QueryResult:
        sql, parameters = activity_sql(query)
        return await self._run(self._select, sql, parameters, {})

    async def costs(self, query: CostQuery) -> QueryResult:
        sql, parameters = costs_sql(query)
        return await self._run(self._select, sql, parameters, {})

    async def key_usage(self, query: KeyUsageQuery) -> QueryResult:
        """(api_key_id, last_used_at as ISO 8601 UTC) of the keys that have request rows."""
        sql = (
            "SELECT api_key_id, formatDateTime(max(ts), '%Y-%m-%dT%H:%i:%SZ', 'UTC') AS last_used_at "
            "FROM keyrail.activity WHERE org_id = {org_id:String} AND kind = 'request' "
            "AND api_key_id IN {ids:Array(String)} GROUP BY api_key_id"
        )
        parameters = {"org_id": query.org_id, "ids": query.api_key_ids}
        return await self._run(self._select, sql, parameters, {})

    async def read_only_sql(self, sql: str) -> QueryResult:
        """Analyst SQL (`keyrail sql`): the server enforces read-only, not a parser of ours."""
        return await self._run(self._select, sql, {}, {"readonly": 1}, True)

    async def close(self) -> None:
        def _close() -> None:
            for client in (self._reader, self._client):
                if client is not None:
                    client.close()

        await self._run(_close)
        self._executor.shutdown(wait=True)
