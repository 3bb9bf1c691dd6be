"""The schema migrations on a real (embedded chDB) ClickHouse: an activity table created by an
older version gets the later columns, every migration is recorded once, and a second start
applies nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyrail_common.clickhouse import ACTIVITY_COLUMNS, ACTIVITY_DDL, MIGRATIONS, ensure_schema, open_client

pytestmark = pytest.mark.integration


def test_an_old_table_is_migrated_once_and_keeps_its_rows(tmp_path: Path) -> None:
    client = open_client(f"chdb://{tmp_path / 'clickhouse'}")
    try:
        # What version 1 of the audit service created, with a row in it.
        client.command("CREATE DATABASE IF NOT EXISTS keyrail")
        client.command(ACTIVITY_DDL)
        client.command(
            "INSERT INTO keyrail.activity (request_id, kind, attempt, ts, prompt_tokens) "
            "VALUES ('req_old', 'request', 1, now64(3), 7)"
        )

        assert ensure_schema(client) == [version for version, _, _ in MIGRATIONS]
        assert ensure_schema(client) == []  # the next start finds every migration recorded

        columns = [row[0] for row in client.query("DESCRIBE TABLE keyrail.activity").result_rows]
        assert tuple(columns) == ACTIVITY_COLUMNS
        recorded = client.query("SELECT version FROM keyrail.schema_migrations FINAL ORDER BY version")
        assert [row[0] for row in recorded.result_rows] == [version for version, _, _ in MIGRATIONS]
        old = client.query(
            "SELECT prompt_tokens, cache_write_tokens, usage_source FROM keyrail.activity FINAL "
            "WHERE request_id = 'req_old'"
        )
        assert old.result_rows == [(7, 0, "")]  # the old row, with the new columns' defaults
    finally:
        client.close()
