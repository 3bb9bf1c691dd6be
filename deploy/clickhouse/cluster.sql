-- Keyrail on a ClickHouse cluster: replicated shards behind Distributed tables.
--
-- GENERATED from MIGRATIONS in libs/keyrail_common/clickhouse.py; do not edit. Regenerate with:
--   python -m keyrail_common.cluster_ddl > deploy/clickhouse/cluster.sql
-- Run it (instead of activity.sql) once, before the first audit service starts; it records
-- every migration as applied, so the audit service changes no schema. Needs the {cluster},
-- {shard} and {replica} macros and ClickHouse Keeper. Grants as in activity.sql, ON CLUSTER.
-- Retention: this file keeps rows forever; the audit service sets the TTLs its
-- KEYRAIL_ACTIVITY_TTL_DAYS / KEYRAIL_COSTS_TTL_DAYS ask for at start (it needs ALTER TTL on the
-- *_local tables for that), or add them here with --activity-ttl-days N --costs-ttl-days M.
-- The audit service acks a JetStream batch once the INSERT returns: make that mean "written to
-- the shards" with distributed_foreground_insert = 1 in the audit user's profile.

CREATE DATABASE IF NOT EXISTS keyrail ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS keyrail.activity_local ON CLUSTER '{cluster}' (
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
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/keyrail/activity_local', '{replica}')
PARTITION BY toYYYYMM(ts)
ORDER BY (org_id, request_id, kind, attempt);

CREATE TABLE IF NOT EXISTS keyrail.activity ON CLUSTER '{cluster}'
AS keyrail.activity_local
ENGINE = Distributed('{cluster}', keyrail, activity_local, cityHash64(org_id, request_id));

ALTER TABLE keyrail.activity_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS cache_write_tokens UInt32,
    ADD COLUMN IF NOT EXISTS usage_source LowCardinality(String);

ALTER TABLE keyrail.activity ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS cache_write_tokens UInt32,
    ADD COLUMN IF NOT EXISTS usage_source LowCardinality(String);

ALTER TABLE keyrail.activity_local ON CLUSTER '{cluster}'
    MODIFY COLUMN cost_usd Nullable(Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS cost_status LowCardinality(String),
    ADD COLUMN IF NOT EXISTS price_version LowCardinality(String);

ALTER TABLE keyrail.activity ON CLUSTER '{cluster}'
    MODIFY COLUMN cost_usd Nullable(Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS cost_status LowCardinality(String),
    ADD COLUMN IF NOT EXISTS price_version LowCardinality(String);

ALTER TABLE keyrail.activity_local ON CLUSTER '{cluster}'
    ADD INDEX IF NOT EXISTS ts_range ts TYPE minmax GRANULARITY 1,
    ADD INDEX IF NOT EXISTS project_set project_id TYPE bloom_filter GRANULARITY 4,
    ADD INDEX IF NOT EXISTS slug_set provider_slug TYPE bloom_filter GRANULARITY 4,
    ADD INDEX IF NOT EXISTS model_set model TYPE bloom_filter GRANULARITY 4,
    ADD INDEX IF NOT EXISTS tag_set tags TYPE bloom_filter GRANULARITY 4;

CREATE TABLE IF NOT EXISTS keyrail.costs_daily_local ON CLUSTER '{cluster}' (
    org_id String,
    day Date,
    project_id String,
    provider_slug LowCardinality(String),
    model String,
    requests UInt64,
    errors UInt64,
    unpriced UInt64,
    prompt_tokens UInt64,
    completion_tokens UInt64,
    cached_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    cost_usd Decimal(38, 18)
) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/keyrail/costs_daily_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (org_id, day, project_id, provider_slug, model);

CREATE TABLE IF NOT EXISTS keyrail.costs_daily ON CLUSTER '{cluster}'
AS keyrail.costs_daily_local
ENGINE = Distributed('{cluster}', keyrail, costs_daily_local, cityHash64(org_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS keyrail.costs_daily_feed ON CLUSTER '{cluster}'
TO keyrail.costs_daily_local AS
SELECT org_id, toDate(ts) AS day, project_id, provider_slug, model,
    count() AS requests,
    countIf(status = 'error') AS errors,
    countIf(cost_status = 'unpriced') AS unpriced,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(ifNull(cost_usd, 0)) AS cost_usd
FROM keyrail.activity_local
WHERE kind = 'request'
GROUP BY org_id, day, project_id, provider_slug, model;

CREATE TABLE IF NOT EXISTS keyrail.costs_daily_by_tag_local ON CLUSTER '{cluster}' (
    org_id String,
    day Date,
    project_id String,
    tag String,
    requests UInt64,
    errors UInt64,
    unpriced UInt64,
    prompt_tokens UInt64,
    completion_tokens UInt64,
    cached_tokens UInt64,
    cache_write_tokens UInt64,
    reasoning_tokens UInt64,
    cost_usd Decimal(38, 18)
) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/keyrail/costs_daily_by_tag_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (org_id, day, project_id, tag);

CREATE TABLE IF NOT EXISTS keyrail.costs_daily_by_tag ON CLUSTER '{cluster}'
AS keyrail.costs_daily_by_tag_local
ENGINE = Distributed('{cluster}', keyrail, costs_daily_by_tag_local, cityHash64(org_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS keyrail.costs_daily_by_tag_feed ON CLUSTER '{cluster}'
TO keyrail.costs_daily_by_tag_local AS
SELECT org_id, toDate(ts) AS day, project_id, arrayJoin(if(empty(tags), [''], tags)) AS tag,
    count() AS requests,
    countIf(status = 'error') AS errors,
    countIf(cost_status = 'unpriced') AS unpriced,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(cache_write_tokens) AS cache_write_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    sum(ifNull(cost_usd, 0)) AS cost_usd
FROM keyrail.activity_local
WHERE kind = 'request'
GROUP BY org_id, day, project_id, tag;

ALTER TABLE keyrail.activity_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS credential_version UInt32;

ALTER TABLE keyrail.activity ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS credential_version UInt32;

ALTER TABLE keyrail.activity_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS config_id LowCardinality(String),
    ADD COLUMN IF NOT EXISTS virtual_model LowCardinality(String);

ALTER TABLE keyrail.activity ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS config_id LowCardinality(String),
    ADD COLUMN IF NOT EXISTS virtual_model LowCardinality(String);

CREATE TABLE IF NOT EXISTS keyrail.schema_migrations ON CLUSTER '{cluster}' (
    version UInt32,
    description String,
    applied_at DateTime64(3, 'UTC')
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/keyrail/schema_migrations', '{replica}')
ORDER BY version;

INSERT INTO keyrail.schema_migrations (version, description, applied_at) VALUES
    (1, 'the activity table', now64(3)),
    (2, 'cache-write tokens and where the usage came from', now64(3)),
    (3, 'exact decimal cost, NULL when unpriced, and the price it was computed with', now64(3)),
    (4, 'skipping indexes for the activity API''s filters', now64(3)),
    (5, 'the daily cost rollup', now64(3)),
    (6, 'the daily cost rollup''s feed', now64(3)),
    (7, 'the daily cost rollup per tag', now64(3)),
    (8, 'the daily cost rollup per tag''s feed', now64(3)),
    (9, 'the daily cost rollups, filled from the rows written before them', now64(3)),
    (10, 'the daily cost rollup per tag, filled from the rows written before it', now64(3)),
    (11, 'the credential version an attempt used', now64(3)),
    (12, 'the gateway config and the virtual model that routed a request', now64(3));
