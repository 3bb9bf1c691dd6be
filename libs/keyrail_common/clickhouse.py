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


def open_client(url: str) -> Client:
    if url.startswith("chdb:"):
        Path(url.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=url)


def ensure_schema(client: Client) -> None:
    client.command("CREATE DATABASE IF NOT EXISTS keyrail")
    client.command(ACTIVITY_DDL)
