"""ClickHouse access through clickhouse-connect: a real server over HTTP or embedded chDB.

The same code path serves both; only the URL differs (`http(s)://…` or `chdb:///path`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import clickhouse_connect
import msgspec
from clickhouse_connect.driver.client import Client

ACTIVITY_COLUMNS = (
    "request_id",
    "kind",
    "attempt",
    "ts",
    "org_id",
    "project_id",
    "api_key_id",
    "provider",
    "provider_slug",
    "model",
    "status",
    "http_status",
    "error_class",
    "error_message",
    "latency_ms",
    "ttft_ms",
    "overhead_ms",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "tags",
    "fallback_position",
    "stream",
    # added by migration 2
    "cache_write_tokens",
    "usage_source",
    # added by migration 3
    "cost_status",
    "price_version",
    # added by migration 11
    "credential_version",
    # added by migration 12
    "config_id",
    "virtual_model",
)

# ReplacingMergeTree on the natural key makes a redelivered batch harmless: queries read FINAL.
ACTIVITY_DDL = """
CREATE TABLE IF NOT EXISTS keyrail.activity (
    request_id String,
    kind LowCardinality(String),
    attempt UInt16,
    ts DateTime64(3, 'UTC'),
    org_id String,
    project_id String,
    api_key_id String,
    provider LowCardinality(String),
    provider_slug LowCardinality(String),
    model String,
    status LowCardinality(String),
    http_status UInt16,
    error_class LowCardinality(String),
    error_message String,
    latency_ms Float64,
    ttft_ms Float64,
    overhead_ms Float64,
    prompt_tokens UInt32,
    completion_tokens UInt32,
    cached_tokens UInt32,
    reasoning_tokens UInt32,
    cost_usd Float64,
    tags Array(String),
    fallback_position UInt16,
    stream UInt8
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (org_id, request_id, kind, attempt)
"""


# The daily cost rollups behind GET /admin/v1/costs: one row per (org, day, project, slug, model)
# and per tag, summed as the request rows arrive (a materialized view on keyrail.activity), so a
# month is a few thousand rows to add up, not millions. Read them with sum() and GROUP BY: parts
# are summed in the background, not at insert. Only request rows count (a request's cost is the
# sum of its attempts already); unpriced requests add to `unpriced`, not to the cost. The audit
# service inserts each row once (consumer.py drops redelivered rows it already wrote), so the
# rollups, which cannot deduplicate, stay exact.
_ROLLUP_SUMS = """
    requests UInt64,
    errors UInt64,
    unpriced UInt64,
    prompt_tokens UInt64,
    completion_tokens UInt64,
    cached_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    cost_usd Decimal(38, 18)
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)"""
COSTS_DAILY_DDL = f"""
CREATE TABLE IF NOT EXISTS keyrail.costs_daily (
    org_id String,
    day Date,
    project_id String,
    provider_slug LowCardinality(String),
    model String,{_ROLLUP_SUMS}
ORDER BY (org_id, day, project_id, provider_slug, model)
"""
COSTS_DAILY_TAG_DDL = f"""
CREATE TABLE IF NOT EXISTS keyrail.costs_daily_by_tag (
    org_id String,
    day Date,
    project_id String,
    tag String,{_ROLLUP_SUMS}
ORDER BY (org_id, day, project_id, tag)
"""
_ROLLUP_SELECT = """
    count() AS requests,
    countIf(status = 'error') AS errors,
    countIf(cost_status = 'unpriced') AS unpriced,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(ifNull(cost_usd, 0)) AS cost_usd"""
_DAILY_SELECT = f"""
SELECT org_id, toDate(ts) AS day, project_id, provider_slug, model,{_ROLLUP_SELECT}
FROM keyrail.activity{{final}}
WHERE kind = 'request'{{guard}}
GROUP BY org_id, day, project_id, provider_slug, model"""
# An untagged request counts under the tag '' so the per-tag rollup adds up to the whole.
_TAG_SELECT = f"""
SELECT org_id, toDate(ts) AS day, project_id, arrayJoin(if(empty(tags), [''], tags)) AS tag,{_ROLLUP_SELECT}
FROM keyrail.activity{{final}}
WHERE kind = 'request'{{guard}}
GROUP BY org_id, day, project_id, tag"""
COSTS_DAILY_MV = (
    "\nCREATE MATERIALIZED VIEW IF NOT EXISTS keyrail.costs_daily_feed TO keyrail.costs_daily AS"
    + (_DAILY_SELECT.format(final="", guard="") + "\n")
)
COSTS_DAILY_TAG_MV = (
    "\nCREATE MATERIALIZED VIEW IF NOT EXISTS keyrail.costs_daily_by_tag_feed\n"
    "TO keyrail.costs_daily_by_tag AS" + _TAG_SELECT.format(final="", guard="") + "\n"
)
# Rows written before the rollups existed; only into an empty rollup, so a rerun adds nothing.
COSTS_BACKFILL = "\nINSERT INTO keyrail.costs_daily" + (
    _DAILY_SELECT.format(final=" FINAL", guard=" AND (SELECT count() FROM keyrail.costs_daily) = 0") + "\n"
)
COSTS_TAG_BACKFILL = "\nINSERT INTO keyrail.costs_daily_by_tag" + (
    _TAG_SELECT.format(final=" FINAL", guard=" AND (SELECT count() FROM keyrail.costs_daily_by_tag) = 0")
    + "\n"
)


# Versioned, idempotent schema changes, applied in order at start and recorded in
# keyrail.schema_migrations; a table created by an older version gets the later columns too.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "the activity table", ACTIVITY_DDL),
    (
        2,
        "cache-write tokens and where the usage came from",
        """
ALTER TABLE keyrail.activity
    ADD COLUMN IF NOT EXISTS cache_write_tokens UInt32,
    ADD COLUMN IF NOT EXISTS usage_source LowCardinality(String)
""",
    ),
    (
        3,
        "exact decimal cost, NULL when unpriced, and the price it was computed with",
        """
ALTER TABLE keyrail.activity
    MODIFY COLUMN cost_usd Nullable(Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS cost_status LowCardinality(String),
    ADD COLUMN IF NOT EXISTS price_version LowCardinality(String)
""",
    ),
    (
        4,
        "skipping indexes for the activity API's filters",
        """
ALTER TABLE keyrail.activity
    ADD INDEX IF NOT EXISTS ts_range ts TYPE minmax GRANULARITY 1,
    ADD INDEX IF NOT EXISTS project_set project_id TYPE bloom_filter GRANULARITY 4,
    ADD INDEX IF NOT EXISTS slug_set provider_slug TYPE bloom_filter GRANULARITY 4,
    ADD INDEX IF NOT EXISTS model_set model TYPE bloom_filter GRANULARITY 4,
    ADD INDEX IF NOT EXISTS tag_set tags TYPE bloom_filter GRANULARITY 4
""",
    ),
    (5, "the daily cost rollup", COSTS_DAILY_DDL),
    (6, "the daily cost rollup's feed", COSTS_DAILY_MV),
    (7, "the daily cost rollup per tag", COSTS_DAILY_TAG_DDL),
    (8, "the daily cost rollup per tag's feed", COSTS_DAILY_TAG_MV),
    (9, "the daily cost rollups, filled from the rows written before them", COSTS_BACKFILL),
    (10, "the daily cost rollup per tag, filled from the rows written before it", COSTS_TAG_BACKFILL),
    (
        11,
        "the credential version an attempt used",
        """
ALTER TABLE keyrail.activity
    ADD COLUMN IF NOT EXISTS credential_version UInt32
""",
    ),
    (
        12,
        "the gateway config and the virtual model that routed a request",
        """
ALTER TABLE keyrail.activity
    ADD COLUMN IF NOT EXISTS config_id LowCardinality(String),
    ADD COLUMN IF NOT EXISTS virtual_model LowCardinality(String)
""",
    ),
)

MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS keyrail.schema_migrations (
    version UInt32,
    description String,
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY version
"""


log = logging.getLogger("keyrail.clickhouse")

ON_CLUSTER = "ON CLUSTER '{cluster}'"  # the cluster variant's DDL (cluster_ddl.py) runs on every node


class Retention(msgspec.Struct, frozen=True):
    """How long rows are kept, in days; 0 keeps them forever (no TTL on the table)."""

    activity_days: int = 0  # the activity log: one row per request and per attempt
    costs_days: int = 0  # the daily cost rollups (small; cost reports over any span keep working)


# The tables a retention applies to, and the column their rows age by.
_AGED_BY = {"activity": "ts", "costs_daily": "day", "costs_daily_by_tag": "day"}
# The table TTL as ClickHouse shows it in system.tables.engine_full (so a comparison is exact).
_ENGINE_TTL = re.compile(r" TTL (.+?)(?: SETTINGS |$)")


def _days(retention: Retention, table: str) -> int:
    return retention.activity_days if table == "activity" else retention.costs_days


def ttl_expression(table: str, days: int) -> str | None:
    """The table TTL for `days` (None: keep forever), spelt as ClickHouse prints it back."""
    return f"{_AGED_BY[table]} + toIntervalDay({days})" if days > 0 else None


def retention_statements(
    retention: Retention, current: dict[str, str | None], cluster: str = ""
) -> list[str]:
    """The ALTERs that bring each aged table's TTL (`current`, None when it has none) to
    `retention`; nothing when they agree, so a start with the same setting changes nothing.
    `cluster`: the ON CLUSTER clause, the statements then address the shards' `<table>_local`."""
    statements = []
    for table in _AGED_BY:
        wanted = ttl_expression(table, _days(retention, table))
        if wanted == current.get(table):
            continue
        target = f"keyrail.{table}_local {cluster}" if cluster else f"keyrail.{table}"
        change = f"MODIFY TTL {wanted}" if wanted else "REMOVE TTL"
        statements.append(f"ALTER TABLE {target} {change}")
    return statements


def current_ttls(client: Client) -> tuple[dict[str, str | None], bool]:
    """(each aged table's TTL as the store has it, whether the tables are a cluster's Distributed
    ones: their TTL then lives on the shards' `<table>_local`)."""
    rows = client.query(
        "SELECT name, engine, engine_full FROM system.tables WHERE database = 'keyrail'"
    ).result_rows
    tables = {name: (engine, engine_full) for name, engine, engine_full in rows}
    distributed = tables.get("activity", ("", ""))[0] == "Distributed"
    current: dict[str, str | None] = {}
    for table in _AGED_BY:
        _, engine_full = tables.get(f"{table}_local" if distributed else table, ("", ""))
        match = _ENGINE_TTL.search(engine_full)
        current[table] = match.group(1) if match else None
    return current, distributed


def apply_retention(client: Client, retention: Retention) -> list[str]:
    """Bring the tables' TTLs to `retention` (at every start, after the migrations); returns the
    statements run. A shorter TTL deletes the older rows in the background."""
    current, distributed = current_ttls(client)
    statements = retention_statements(retention, current, ON_CLUSTER if distributed else "")
    for statement in statements:
        log.info("retention: %s", statement)
        client.command(statement)
    return statements


def open_client(url: str) -> Client:
    if url.startswith("chdb:"):
        Path(url.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=url)


def ensure_schema(client: Client) -> list[int]:
    """Apply the migrations this store lacks; returns the versions applied now."""
    client.command("CREATE DATABASE IF NOT EXISTS keyrail")
    client.command(MIGRATIONS_DDL)
    done = {row[0] for row in client.query("SELECT version FROM keyrail.schema_migrations FINAL").result_rows}
    applied = []
    for version, description, statement in MIGRATIONS:
        if version in done:
            continue
        client.command(statement)  # each is idempotent: a crash before the record is harmless
        client.command(
            "INSERT INTO keyrail.schema_migrations (version, description, applied_at) "
            "VALUES ({version:UInt32}, {description:String}, now64(3))",
            parameters={"version": version, "description": description},
        )
        applied.append(version)
    return applied
