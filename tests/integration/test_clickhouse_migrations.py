"""The schema migrations on a real (embedded chDB) ClickHouse: an activity table created by an
older version gets the later columns, every migration is recorded once, and a second start
applies nothing. The retention setting is the tables' TTL, following the setting at each start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from keyrail_audit.store import ActivityStore
from keyrail_common.clickhouse import (
    ACTIVITY_COLUMNS,
    ACTIVITY_DDL,
    MIGRATIONS,
    Retention,
    apply_retention,
    ensure_schema,
    open_client,
)

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


def _table_ttls(client: Client) -> dict[str, str]:
    rows = client.query(
        "SELECT name, engine_full FROM system.tables WHERE database = 'keyrail' "
        "AND name IN ('activity', 'costs_daily', 'costs_daily_by_tag') ORDER BY name"
    ).result_rows
    return {name: engine_full.partition(" TTL ")[2].partition(" SETTINGS ")[0] for name, engine_full in rows}


def test_the_tables_ttl_follows_the_retention_setting_at_every_start(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'clickhouse'}"

    def start(retention: Retention) -> None:  # what the audit service does on start
        async def run() -> None:
            store = ActivityStore(url, retention)
            await store.open()
            await store.close()

        asyncio.run(run())

    start(Retention())
    client = open_client(url)
    try:
        assert _table_ttls(client) == {"activity": "", "costs_daily": "", "costs_daily_by_tag": ""}
        # Rows of 40 days ago and of today, then a 30-day retention: the old row goes.
        client.command(
            "INSERT INTO keyrail.activity (request_id, kind, attempt, ts) VALUES "
            "('req_old', 'request', 1, now64(3) - INTERVAL 40 DAY), ('req_new', 'request', 1, now64(3))"
        )
    finally:
        client.close()

    start(Retention(activity_days=30, costs_days=400))
    client = open_client(url)
    try:
        assert _table_ttls(client) == {
            "activity": "ts + toIntervalDay(30)",
            "costs_daily": "day + toIntervalDay(400)",
            "costs_daily_by_tag": "day + toIntervalDay(400)",
        }
        assert apply_retention(client, Retention(activity_days=30, costs_days=400)) == []  # nothing to do
        client.command("OPTIMIZE TABLE keyrail.activity FINAL")  # what a background merge does in time
        kept = client.query("SELECT request_id FROM keyrail.activity ORDER BY request_id").result_rows
        assert kept == [("req_new",)]
    finally:
        client.close()

    start(Retention(activity_days=7))  # a new setting; rollups back to forever
    client = open_client(url)
    try:
        assert _table_ttls(client) == {
            "activity": "ts + toIntervalDay(7)",
            "costs_daily": "",
            "costs_daily_by_tag": "",
        }
    finally:
        client.close()
