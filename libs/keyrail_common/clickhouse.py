"""ClickHouse access through clickhouse-connect: a real server over HTTP or embedded chDB.

The same code path serves both; only the URL differs (`http(s)://…` or `chdb:///path`).
"""

from __future__ import annotations

from pathlib import Path

import clickhouse_connect
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
)

MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS keyrail.schema_migrations (
    version UInt32,
    description String,
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY version
"""


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
