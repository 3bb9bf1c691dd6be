"""The operator's DDL (deploy/clickhouse/activity.sql) and the one the audit service runs agree."""

from __future__ import annotations

import re
from pathlib import Path

from keyrail_common.clickhouse import ACTIVITY_COLUMNS, ACTIVITY_DDL, MIGRATIONS

DEPLOY_SQL = Path(__file__).resolve().parents[3] / "deploy" / "clickhouse" / "activity.sql"


def _table_statement(sql: str) -> str:
    start = sql.index("CREATE TABLE IF NOT EXISTS keyrail.activity")
    return sql[start : sql.index(";", start)]


def _normalised(statement: str) -> list[str]:
    return [line.strip().rstrip(",") for line in statement.strip().splitlines() if line.strip()]


def test_deploy_ddl_matches_the_services_ddl() -> None:
    assert _normalised(_table_statement(DEPLOY_SQL.read_text())) == _normalised(ACTIVITY_DDL)


def _added_columns(statement: str) -> list[str]:
    return re.findall(r"ADD COLUMN IF NOT EXISTS (\w+)", statement)


def test_insert_columns_are_the_tables_columns_after_every_migration_in_order() -> None:
    lines = _normalised(ACTIVITY_DDL)
    columns = [line.split()[0] for line in lines[1 : lines.index(") ENGINE = ReplacingMergeTree")]]
    for _, _, statement in MIGRATIONS[1:]:
        columns += _added_columns(statement)
    assert tuple(columns) == ACTIVITY_COLUMNS


def test_migrations_are_numbered_in_order_and_start_with_the_table() -> None:
    assert [version for version, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[0][2] == ACTIVITY_DDL


def test_deploy_sql_carries_every_later_migration() -> None:
    deploy = " ".join(DEPLOY_SQL.read_text().split())
    for _, _, statement in MIGRATIONS[1:]:
        assert " ".join(statement.split()) + ";" in deploy
