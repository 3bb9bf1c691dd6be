"""Activity and cost queries over a month of rows: `python -m bench.analytics [--rows 1000000]`.

Loads `--rows` activity rows (half request rows, half attempt rows) spread over 30 days, 20
integrations, 50 projects, 8 models and 10 tags into a fresh embedded ClickHouse through the audit
store's own insert (the materialized views fill the daily rollups as they would in production),
then times what the admin API asks: a filtered activity page (and the page after it, through its
cursor), and the cost report grouped by slug and by tag over 30 days. Prints the median of
`--repeat` runs of each. The targets (issue 11): activity under 1 s, costs under 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from keyrail_audit.store import ActivityStore
from keyrail_common.messages import (
    ActivityCursor,
    ActivityQuery,
    ActivityRow,
    CostGroupBy,
    CostQuery,
    QueryResult,
)

ORG = "org_bench"
DAYS = 30
_BATCH = 50_000


def rows(count: int, seed: int = 11) -> list[ActivityRow]:
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    out = []
    for i in range(count // 2):
        ts = now_ms - rng.randrange(DAYS * 86_400_000)
        request_id = f"req_{ts:012x}{i:012x}"
        failed = rng.random() < 0.02
        common = {
            "request_id": request_id,
            "ts_ms": ts,
            "org_id": ORG,
            "project_id": f"proj_{rng.randrange(50):02d}",
            "provider": "openai",
            "provider_slug": f"slug-{rng.randrange(20):02d}",
            "model": f"model-{rng.randrange(8)}",
            "status": "error" if failed else "ok",
            "http_status": 502 if failed else 200,
            "error_class": "upstream_5xx" if failed else "",
            "prompt_tokens": rng.randrange(10, 4000),
            "completion_tokens": rng.randrange(1, 800),
            "cost_usd": Decimal(0) if failed else Decimal(rng.randrange(1, 10**6)) / 10**9,
            "tags": [f"tag-{rng.randrange(10)}"] if rng.random() < 0.7 else [],
        }
        out.append(ActivityRow(kind="request", attempt=1, **common))  # type: ignore[arg-type]
        out.append(ActivityRow(kind="attempt", attempt=1, **common))  # type: ignore[arg-type]
    return out


async def timed(repeat: int, query: Callable[[], Awaitable[QueryResult]]) -> tuple[float, QueryResult]:
    times, result = [], QueryResult()
    for _ in range(repeat):
        started = time.perf_counter()
        result = await query()
        times.append((time.perf_counter() - started) * 1000)
        assert not result.error, result.error
    return statistics.median(times), result


async def main(count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="keyrail-bench-analytics-") as data:
        store = ActivityStore(f"chdb://{data}/clickhouse")
        await store.open()
        try:
            loaded = rows(count)
            started = time.perf_counter()
            for i in range(0, len(loaded), _BATCH):
                await store.insert(loaded[i : i + _BATCH])
            print(f"loaded {len(loaded):,} rows in {time.perf_counter() - started:.1f} s")
            since_ms = int((datetime.now(UTC) - timedelta(days=7)).timestamp() * 1000)
            page = ActivityQuery(
                org_id=ORG, provider_slug="slug-07", status="ok", since_ms=since_ms, limit=101
            )
            ms, first = await timed(repeat, lambda: store.activity(page))
            print(f"activity: slug + status + since, 100 rows: {ms:.1f} ms (median of {repeat})")
            last = dict(zip(first.columns, first.rows[99], strict=True))
            ts_ms = round(datetime.fromisoformat(str(last["ts"])).timestamp() * 1000)
            cursor = ActivityCursor(
                ts_ms, str(last["request_id"]), str(last["kind"]), int(str(last["attempt"]))
            )
            after = ActivityQuery(
                org_id=ORG, provider_slug="slug-07", status="ok", since_ms=since_ms, limit=101, after=cursor
            )
            ms, _ = await timed(repeat, lambda: store.activity(after))
            print(f"activity: the next page through its cursor: {ms:.1f} ms")
            ms, _ = await timed(repeat, lambda: store.activity(ActivityQuery(org_id=ORG, limit=101)))
            print(f"activity: newest 100, no filter: {ms:.1f} ms")
            since_day = (datetime.now(UTC).date() - timedelta(days=DAYS - 1)).isoformat()
            for group in (CostGroupBy.SLUG, CostGroupBy.TAG, CostGroupBy.DAY):
                costs = CostQuery(org_id=ORG, group_by=group, since_day=since_day)
                ms, result = await timed(repeat, lambda costs=costs: store.costs(costs))  # type: ignore[misc]
                print(f"costs: 30 days by {group.value} ({len(result.rows)} groups): {ms:.1f} ms")
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows, arguments.repeat))
