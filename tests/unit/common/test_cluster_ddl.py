"""The cluster DDL (deploy/clickhouse/cluster.sql) is generated from the migrations: it cannot drift
from the single-server schema, and it has every table, column, view and migration record."""

from __future__ import annotations

import re
from pathlib import Path

from keyrail_common.clickhouse import ACTIVITY_COLUMNS, MIGRATIONS
from keyrail_common.cluster_ddl import cluster_statements, render

CLUSTER_SQL = Path(__file__).resolve().parents[3] / "deploy" / "clickhouse" / "cluster.sql"


def test_the_file_is_what_the_migrations_generate() -> None:
    # After a new migration: python -m keyrail_common.cluster_ddl > deploy/clickhouse/cluster.sql
    assert CLUSTER_SQL.read_text() == render()


def test_every_table_is_replicated_on_the_shards_behind_a_distributed_table() -> None:
    text = "\n".join(cluster_statements())
    tables = re.findall(
        r"CREATE TABLE IF NOT EXISTS keyrail\.(\w+) \(", "\n".join(s for _, _, s in MIGRATIONS)
    )

    assert tables == ["activity", "costs_daily", "costs_daily_by_tag"]
    for table in tables:
        assert f"keyrail.{table}_local ON CLUSTER '{{cluster}}' (" in text
        assert f"/clickhouse/tables/{{shard}}/keyrail/{table}_local" in text
        assert f"ENGINE = Distributed('{{cluster}}', keyrail, {table}_local," in text


def test_the_shards_activity_table_gets_every_column_the_audit_service_inserts() -> None:
    local = [s for s in cluster_statements() if "keyrail.activity_local" in s.split("\n")[0]]
    columns = re.findall(r"^\s+(\w+) [A-Z]", local[0], flags=re.MULTILINE)
    for statement in local[1:]:
        columns += re.findall(r"ADD COLUMN IF NOT EXISTS (\w+)", statement)

    assert tuple(columns) == ACTIVITY_COLUMNS


def test_views_feed_the_shards_rollups_from_the_shards_rows() -> None:
    views = [s for s in cluster_statements() if s.startswith("CREATE MATERIALIZED VIEW")]

    assert len(views) == 2
    for view in views:
        assert "FROM keyrail.activity_local" in view and re.search(r"TO keyrail\.\w+_local AS", view)


def test_every_migration_is_recorded_as_applied_and_no_backfill_runs() -> None:
    statements = cluster_statements()
    recorded = re.findall(r"^    \((\d+), ", statements[-1], flags=re.MULTILINE)

    assert [int(v) for v in recorded] == [version for version, _, _ in MIGRATIONS]
    assert not any(s.startswith("INSERT INTO keyrail.costs") for s in statements)
