"""The cluster variant of the schema (ReplicatedMergeTree shards behind Distributed tables),
generated from the one list of migrations in clickhouse.py, so the two cannot drift.

`python -m keyrail_common.cluster_ddl > deploy/clickhouse/cluster.sql` writes it; a unit test
checks the file is what this prints. Each `keyrail.<table>` becomes `<table>_local` on every
shard (Replicated*, the same columns, engine key and partitions) plus a Distributed table under
the name the services use; materialized views feed the shard-local rollups from the shard-local
activity rows. Backfills are left out (a new cluster has no rows) and every migration is recorded
as applied, so the audit service, started after this ran, changes no schema itself.

Retention (KEYRAIL_ACTIVITY_TTL_DAYS, KEYRAIL_COSTS_TTL_DAYS) is the shards' table TTL: the audit
service sets it at start from its settings (on `<table>_local`, ON CLUSTER), or, for an audit user
without ALTER rights, `--activity-ttl-days N --costs-ttl-days M` adds the same statements here.
"""

from __future__ import annotations

import argparse
import re

from keyrail_common.clickhouse import MIGRATIONS, MIGRATIONS_DDL, ON_CLUSTER, Retention, retention_statements

# Every version of a row on one shard, so FINAL (applied per shard) still deduplicates; the
# rollups are summed across shards by every query, so any spread will do.
SHARDING = {"activity": "cityHash64(org_id, request_id)"}
_DEFAULT_SHARDING = "cityHash64(org_id)"
_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS keyrail\.(\w+) \(")
_ENGINE = re.compile(r"\) ENGINE = (\w+)")
_ALTER = re.compile(r"^ALTER TABLE keyrail\.(\w+)\n")
_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW IF NOT EXISTS keyrail\.(\w+)\s+TO keyrail\.(\w+) AS")
_FROM_ACTIVITY = re.compile(r"\bFROM keyrail\.activity\b")


def _table(name: str, statement: str, zookeeper_path: str) -> str:
    """`statement`'s table as `keyrail.<name>` on every node, Replicated at `zookeeper_path`."""
    local = _CREATE_TABLE.sub(f"CREATE TABLE IF NOT EXISTS keyrail.{name} {ON_CLUSTER} (", statement)
    return _ENGINE.sub(
        lambda m: f") ENGINE = Replicated{m.group(1)}('{zookeeper_path}', '{{replica}}')", local, count=1
    )


def _create(statement: str) -> list[str]:
    match = _CREATE_TABLE.match(statement)
    assert match is not None
    name = match.group(1)
    local = _table(f"{name}_local", statement, f"/clickhouse/tables/{{shard}}/keyrail/{name}_local")
    sharding = SHARDING.get(name, _DEFAULT_SHARDING)
    distributed = (
        f"CREATE TABLE IF NOT EXISTS keyrail.{name} {ON_CLUSTER}\nAS keyrail.{name}_local\n"
        f"ENGINE = Distributed('{{cluster}}', keyrail, {name}_local, {sharding})"
    )
    return [local, distributed]


def _alter(statement: str) -> list[str]:
    match = _ALTER.match(statement)
    assert match is not None
    name, body = match.group(1), statement[match.end() :]
    local = [f"ALTER TABLE keyrail.{name}_local {ON_CLUSTER}\n{body}"]
    if "INDEX" in body:  # skipping indexes live on the shards' tables only
        return local
    return [*local, f"ALTER TABLE keyrail.{name} {ON_CLUSTER}\n{body}"]  # columns: both


def _view(statement: str) -> list[str]:
    match = _VIEW.match(statement)
    assert match is not None
    head = f"CREATE MATERIALIZED VIEW IF NOT EXISTS keyrail.{match.group(1)} {ON_CLUSTER}\n"
    head += f"TO keyrail.{match.group(2)}_local AS"
    return [_FROM_ACTIVITY.sub("FROM keyrail.activity_local", head + statement[match.end() :])]


def cluster_statements(retention: Retention | None = None) -> list[str]:
    statements = [f"CREATE DATABASE IF NOT EXISTS keyrail {ON_CLUSTER}"]
    for _, _, raw in MIGRATIONS:
        statement = raw.strip()
        if statement.startswith("CREATE TABLE"):
            statements += _create(statement)
        elif statement.startswith("ALTER TABLE"):
            statements += _alter(statement)
        elif statement.startswith("CREATE MATERIALIZED VIEW"):
            statements += _view(statement)
        elif not statement.startswith("INSERT INTO"):
            raise ValueError(f"no cluster form for migration statement: {statement[:60]!r}")
    # One migrations table for the whole cluster (every node a replica of it), every version applied.
    statements.append(
        _table("schema_migrations", MIGRATIONS_DDL.strip(), "/clickhouse/tables/keyrail/schema_migrations")
    )
    applied = ",\n".join(
        f"    ({version}, '{description.replace(chr(39), chr(39) * 2)}', now64(3))"
        for version, description, _ in MIGRATIONS
    )
    statements.append(
        f"INSERT INTO keyrail.schema_migrations (version, description, applied_at) VALUES\n{applied}"
    )
    # A new cluster's tables have no TTL: only a retention other than "forever" adds statements.
    return statements + retention_statements(retention or Retention(), {}, ON_CLUSTER)


HEADER = """-- Keyrail on a ClickHouse cluster: replicated shards behind Distributed tables.
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
"""


def render(retention: Retention | None = None) -> str:
    return HEADER + "".join(f"\n{statement};\n" for statement in cluster_statements(retention))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print the cluster variant of the Keyrail schema.")
    for table, what in (("activity", "activity rows"), ("costs", "rollup rows")):
        parser.add_argument(f"--{table}-ttl-days", type=int, default=0, help=f"keep {what} N days, 0 forever")
    args = parser.parse_args(argv)
    print(render(Retention(activity_days=args.activity_ttl_days, costs_days=args.costs_ttl_days)), end="")


if __name__ == "__main__":
    main()
