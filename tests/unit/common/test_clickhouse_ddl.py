"""The operator's DDL (deploy/clickhouse/activity.sql) and the one the audit service runs agree."""

from __future__ import annotations

from pathlib import Path

from keyrail_common.clickhouse import ACTIVITY_COLUMNS, ACTIVITY_DDL

DEPLOY_SQL = Path(__file__).resolve().parents[3] / "deploy" / "clickhouse" / "activity.sql"


def _table_statement(sql: str) -> str:
    start = sql.index("CREATE TABLE IF NOT EXISTS keyrail.activity")
    return sql[start : sql.index(";", start)]


def _normalised(statement: str) -> list[str]:
    return [line.strip().rstrip(",") for line in statement.strip().splitlines() if line.strip()]


def test_deploy_ddl_matches_the_services_ddl() -> None:
    assert _normalised(_table_statement(DEPLOY_SQL.read_text())) == _normalised(ACTIVITY_DDL)


def test_insert_columns_are_the_tables_columns_in_order() -> None:
    lines = _normalised(ACTIVITY_DDL)
    columns = [line.split()[0] for line in lines[1 : lines.index(") ENGINE = ReplacingMergeTree")]]
    assert tuple(columns) == ACTIVITY_COLUMNS
