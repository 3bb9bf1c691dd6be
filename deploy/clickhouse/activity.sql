-- Keyrail activity log on a ClickHouse server.
--
-- Same database, table, columns and engine as ACTIVITY_DDL in
-- libs/keyrail_common/clickhouse.py (keep the two in step). The audit service runs the same
-- CREATE ... IF NOT EXISTS at start, so on a single server this file is optional; running it
-- up front lets you give the audit user no DDL rights (see the grants at the end).
--
-- One row per attempt (kind = 'attempt') and one per request (kind = 'request').
-- ReplacingMergeTree on the natural key makes a redelivered JetStream batch harmless; the
-- service reads with FINAL. Analysts should do the same (or GROUP BY the key):
--   SELECT provider_slug, sum(cost_usd), countIf(cost_status = 'unpriced') FROM keyrail.activity FINAL
--   WHERE kind = 'request' AND ts >= now() - INTERVAL 1 DAY GROUP BY provider_slug;

CREATE DATABASE IF NOT EXISTS keyrail;

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
ORDER BY (org_id, request_id, kind, attempt);

-- Migration 2 (MIGRATIONS in libs/keyrail_common/clickhouse.py; the audit service applies every
-- migration it finds missing at start and records it in keyrail.schema_migrations).
ALTER TABLE keyrail.activity
    ADD COLUMN IF NOT EXISTS cache_write_tokens UInt32,
    ADD COLUMN IF NOT EXISTS usage_source LowCardinality(String);

-- Migration 3: exact decimal cost (NULL when a price or the usage is unknown, never 0), whether
-- it is priced, and the price version it was computed with.
ALTER TABLE keyrail.activity
    MODIFY COLUMN cost_usd Nullable(Decimal(38, 18)),
    ADD COLUMN IF NOT EXISTS cost_status LowCardinality(String),
    ADD COLUMN IF NOT EXISTS price_version LowCardinality(String);

-- Migration 4: skipping indexes for the activity API's filters.
ALTER TABLE keyrail.activity
    ADD INDEX IF NOT EXISTS ts_range ts TYPE minmax GRANULARITY 1,
    ADD INDEX IF NOT EXISTS project_set project_id TYPE bloom_filter GRANULARITY 4,
    ADD INDEX IF NOT EXISTS slug_set provider_slug TYPE bloom_filter GRANULARITY 4,
    ADD INDEX IF NOT EXISTS model_set model TYPE bloom_filter GRANULARITY 4,
    ADD INDEX IF NOT EXISTS tag_set tags TYPE bloom_filter GRANULARITY 4;

-- Migration 5: the daily cost rollup.
CREATE TABLE IF NOT EXISTS keyrail.costs_daily (
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
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (org_id, day, project_id, provider_slug, model);

-- Migration 6: the daily cost rollup's feed.
CREATE MATERIALIZED VIEW IF NOT EXISTS keyrail.costs_daily_feed TO keyrail.costs_daily AS
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
FROM keyrail.activity
WHERE kind = 'request'
GROUP BY org_id, day, project_id, provider_slug, model;

-- Migration 7: the daily cost rollup per tag.
CREATE TABLE IF NOT EXISTS keyrail.costs_daily_by_tag (
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
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (org_id, day, project_id, tag);

-- Migration 8: the daily cost rollup per tag's feed.
CREATE MATERIALIZED VIEW IF NOT EXISTS keyrail.costs_daily_by_tag_feed
TO keyrail.costs_daily_by_tag AS
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
FROM keyrail.activity
WHERE kind = 'request'
GROUP BY org_id, day, project_id, tag;

-- Migration 9: the daily cost rollups, filled from the rows written before them.
INSERT INTO keyrail.costs_daily
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
FROM keyrail.activity FINAL
WHERE kind = 'request' AND (SELECT count() FROM keyrail.costs_daily) = 0
GROUP BY org_id, day, project_id, provider_slug, model;

-- Migration 10: the daily cost rollup per tag, filled from the rows written before it.
INSERT INTO keyrail.costs_daily_by_tag
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
FROM keyrail.activity FINAL
WHERE kind = 'request' AND (SELECT count() FROM keyrail.costs_daily_by_tag) = 0
GROUP BY org_id, day, project_id, tag;

-- Migration 11: the credential version an attempt used.
ALTER TABLE keyrail.activity
    ADD COLUMN IF NOT EXISTS credential_version UInt32;

-- Migration 12: the gateway config and the virtual model that routed a request.
ALTER TABLE keyrail.activity
    ADD COLUMN IF NOT EXISTS config_id LowCardinality(String),
    ADD COLUMN IF NOT EXISTS virtual_model LowCardinality(String);

-- Least-privilege users (run as an admin; replace the placeholders). The audit service
-- inserts and answers the admin API's activity/cost queries and `keyrail sql` (which it runs
-- with readonly=1); analysts get a read-only user of their own.
--
-- CREATE USER IF NOT EXISTS keyrail_audit IDENTIFIED WITH sha256_password BY 'CHANGE_ME';
-- GRANT SELECT, INSERT ON keyrail.* TO keyrail_audit;
-- -- only if the audit service should create the schema itself (it runs CREATE ... IF NOT EXISTS):
-- -- GRANT CREATE DATABASE, CREATE TABLE ON keyrail.* TO keyrail_audit;
-- -- only with KEYRAIL_ACTIVITY_TTL_DAYS / KEYRAIL_COSTS_TTL_DAYS (the service sets the TTLs at start):
-- -- GRANT ALTER TTL ON keyrail.* TO keyrail_audit;
-- CREATE USER IF NOT EXISTS keyrail_analyst IDENTIFIED WITH sha256_password BY 'CHANGE_ME'
--     SETTINGS readonly = 1;
-- GRANT SELECT ON keyrail.* TO keyrail_analyst;
--
-- KEYRAIL_CLICKHOUSE_URL for the audit service then is
--   http://keyrail_audit:<url-encoded password>@clickhouse:8123     (https://...:8443 with TLS)
-- Leave the database out of the URL: clickhouse-connect requires a database named there to
-- exist already, and every Keyrail query names keyrail.activity in full.

-- ---------------------------------------------------------------------------------------
-- Cluster variant (replicated shards behind Distributed tables): deploy/clickhouse/cluster.sql,
-- generated from the same migrations. Run it INSTEAD of this file, before the first audit
-- service starts.
