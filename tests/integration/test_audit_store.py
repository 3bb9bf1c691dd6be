"""The audit store on a real (embedded chDB) ClickHouse: a redelivered batch is written once, so
the daily cost rollups (which cannot deduplicate) count every request once, exactly."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest

from keyrail_audit.consumer import unique_rows
from keyrail_audit.store import ActivityStore
from keyrail_common.messages import ActivityRow

pytestmark = pytest.mark.integration


def _rows(count: int) -> list[ActivityRow]:
    now_ms = int(time.time() * 1000)
    return [
        ActivityRow(
            request_id=f"req_{i:04d}",
            kind="request",
            attempt=1,
            ts_ms=now_ms + i,
            org_id="org_1",
            provider_slug="openai-prod",
            cost_usd=Decimal("0.000001") * (i + 1),
        )
        for i in range(count)
    ]


def test_a_redelivered_batch_is_written_once_and_counted_once(tmp_path: Path) -> None:
    async def run() -> tuple[list[ActivityRow], list[ActivityRow], list[list[object]]]:
        store = ActivityStore(f"chdb://{tmp_path / 'clickhouse'}")
        await store.open()
        try:
            rows = _rows(300)
            await store.insert(rows[:200])  # written, then the audit service died before its ack
            redelivered = await store.not_yet_written(unique_rows(rows + rows[:10]))
            await store.insert(redelivered)
            again = await store.not_yet_written(rows)
            costs = await store.read_only_sql(
                "SELECT sum(requests), sum(cost_usd) FROM keyrail.costs_daily WHERE org_id = 'org_1'"
            )
            return redelivered, again, costs.rows
        finally:
            await store.close()

    redelivered, again, costs = asyncio.run(run())

    assert [r.request_id for r in redelivered] == [f"req_{i:04d}" for i in range(200, 300)]
    assert again == []
    assert costs == [[300, "0.04515"]]  # 0.000001 x (1 + 2 + ... + 300), exactly


def test_a_batch_published_twice_keeps_one_row_per_key() -> None:
    rows = _rows(3)

    assert unique_rows(rows + rows) == rows
    assert unique_rows(rows) is rows  # the usual case costs no copy
