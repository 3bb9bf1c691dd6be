"""ClickHouse unavailable for a while, on the real stack: requests keep being served, the gateway
stays ready with the backlog in `/healthz` detail, the audit service neither crashes nor spins,
and once ClickHouse is back every row arrives, each once.

Three ways to lose ClickHouse: the embedded chDB store held by another process when the audit
service starts, a ClickHouse server URL nothing answers on, and inserts failing after the store
was opened (the activity table detached under a running consumer)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from keyrail_audit.backlog import Backlog
from keyrail_audit.consumer import ActivityConsumer
from keyrail_audit.store import ActivityStore, StoreState
from keyrail_common import subjects
from keyrail_common.activity import ActivityBatch, encode_batch
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.clickhouse import open_client
from keyrail_common.messages import ActivityRow
from tests.integration.conftest import eventually, provision
from tests.support.stack import KeyrailStack, MockUpstream, free_port_block, service_pids

pytestmark = pytest.mark.integration

REQUESTS = 200
# Holds a chDB data dir (as an analyst's own chDB session would) until its stdin closes.
_HOLDER = """
import sys
from keyrail_common.clickhouse import open_client
client = open_client(sys.argv[1])
client.query("SELECT 1")
print("held", flush=True)
sys.stdin.read()
client.close()
"""


def _send(stack: KeyrailStack, key: str, model: str, count: int) -> list[int]:
    body = {"model": model, "messages": [{"role": "user", "content": "one two three"}]}

    async def run() -> list[int]:
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(
            base_url=stack.url, headers={"Authorization": f"Bearer {key}"}
        ) as client:

            async def one() -> int:
                async with limit:
                    return (await client.post("/v1/chat/completions", json=body, timeout=60)).status_code

            return await asyncio.gather(*(one() for _ in range(count)))

    return asyncio.run(run())


def _audit_detail(stack: KeyrailStack) -> dict[str, Any]:
    health = httpx.get(f"{stack.url}/healthz", timeout=5)
    assert health.status_code == 200, health.text  # never unready for ClickHouse's sake
    detail: dict[str, Any] = health.json()["detail"]["audit"]
    return detail


def _wait_for_backlog(stack: KeyrailStack, timeout_s: float = 15.0) -> dict[str, Any]:
    """The audit detail once it reports the backlog of the rows published so far."""
    deadline = time.monotonic() + timeout_s
    while (detail := _audit_detail(stack))["backlog"] <= 0:
        assert time.monotonic() < deadline, detail
        time.sleep(0.3)
    return detail


def _wait_for_every_row(stack: KeyrailStack, slug: str, requests: int, timeout_s: float = 30.0) -> None:
    """Every request's two rows, each once: no FINAL, so a duplicate would be counted."""
    count = f"SELECT count() FROM keyrail.activity WHERE provider_slug = '{slug}'"
    deadline = time.monotonic() + timeout_s
    while (rows := stack.admin("POST", "/admin/v1/sql", {"sql": count})).status_code != 200 or rows.json()[
        "rows"
    ] != [[2 * requests]]:
        assert time.monotonic() < deadline, rows.text
        time.sleep(0.5)
    stack.assert_each_request_written_once(slug, requests)


def _backlog_metric(stack: KeyrailStack) -> float:
    """keyrail_audit_backlog_messages from the audit service's own /metrics (metrics base port)."""
    metrics = httpx.get(f"http://127.0.0.1:{stack.base_port + 1}/metrics", timeout=5).text
    (line,) = [line for line in metrics.splitlines() if line.startswith("keyrail_audit_backlog_messages ")]
    return float(line.split()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def test_requests_are_served_while_the_embedded_store_is_held_and_every_row_arrives_once_released(
    tmp_path: Path, upstream: MockUpstream
) -> None:
    slug = "openai-held-store"
    stack = KeyrailStack(tmp_path / "data", tmp_path / "keyrail-up.log")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, f"chdb://{stack.data_dir / 'clickhouse'}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        stack.start()  # ready although the audit service cannot open its store
        tenant = provision(stack, upstream, slug)

        assert _send(stack, tenant.api_key, tenant.model, REQUESTS) == [200] * REQUESTS
        detail = _wait_for_backlog(stack)
        assert detail["store"] == "unavailable"
        assert _backlog_metric(stack) > 0
        activity = stack.admin("GET", "/admin/v1/activity")  # no answer rather than a wrong, empty one
        assert activity.status_code == 503, activity.text
        assert activity.json()["error"]["code"] == "store_unavailable"
        assert "ClickHouse cannot be reached yet" in activity.json()["error"]["message"]

        # Waiting for its store costs the audit service next to no CPU: retries are seconds apart.
        (audit_pid,) = service_pids(stack.data_dir, "audit")
        cpu_before, wall_before = _cpu_seconds(audit_pid), time.monotonic()
        time.sleep(6)
        cpu_share = (_cpu_seconds(audit_pid) - cpu_before) / (time.monotonic() - wall_before)
        assert cpu_share < 0.3, f"the audit service used {cpu_share:.0%} of a CPU while waiting"

        assert holder.stdin is not None
        holder.stdin.close()  # the other process lets go of the data dir
        assert holder.wait(30) == 0

        _wait_for_every_row(stack, slug, REQUESTS)
        deadline = time.monotonic() + 15
        while (detail := _audit_detail(stack)) != {"backlog": 0, "store": "ok"}:
            assert time.monotonic() < deadline, detail
            time.sleep(0.3)
        assert service_pids(stack.data_dir, "audit") == [audit_pid]  # waited, never crashed
        assert b"audit exited with code" not in stack.log_path.read_bytes()
    finally:
        if holder.poll() is None:
            holder.kill()
        if stack.process is not None:
            assert stack.stop() == 0


def test_rows_sent_while_the_clickhouse_server_is_unreachable_wait_in_jetstream_until_a_store_is(
    tmp_path: Path, upstream: MockUpstream
) -> None:
    slug = "openai-dead-server"
    dead = f"http://127.0.0.1:{free_port_block(1)}"  # nothing listens there
    data_dir = tmp_path / "data"
    down = KeyrailStack(data_dir, tmp_path / "keyrail-up.log", extra_env={"KEYRAIL_CLICKHOUSE_URL": dead})
    down.start()
    try:
        tenant = provision(down, upstream, slug)
        assert _send(down, tenant.api_key, tenant.model, REQUESTS) == [200] * REQUESTS
        assert _wait_for_backlog(down)["store"] == "unavailable"
    finally:
        stopped_at = time.monotonic()
        assert down.stop() == 0  # the audit service stops promptly, its rows left in JetStream
    assert time.monotonic() - stopped_at < 30
    assert b"audit did not stop" not in down.log_path.read_bytes()

    # The operator points the audit service at a store that answers (here the embedded one), and
    # sets a retention on the way.
    back = KeyrailStack(
        data_dir,
        tmp_path / "keyrail-up.log",
        base_port=down.base_port,
        extra_env={"KEYRAIL_ACTIVITY_TTL_DAYS": "90"},
    )
    back.start()
    try:
        _wait_for_every_row(back, slug, REQUESTS)
        engine = back.sql(
            "SELECT engine_full FROM system.tables WHERE database = 'keyrail' AND name = 'activity'"
        )
        assert " TTL ts + toIntervalDay(90) " in engine[0][0]
    finally:
        assert back.stop() == 0


def _rows(requests: int, slug: str) -> list[ActivityRow]:
    now_ms = int(time.time() * 1000)
    return [
        ActivityRow(
            request_id=f"req_{i:04d}",
            kind=kind,
            attempt=1,
            ts_ms=now_ms + i,
            org_id="org_1",
            provider_slug=slug,
        )
        for i in range(requests)
        for kind in ("attempt", "request")
    ]


class DetachedStore:
    """A consumer on a real NATS and a real chDB store whose activity table is detached under it
    (inserts then fail with ClickHouse's own UNKNOWN_TABLE), with 50 messages of two requests each
    published meanwhile."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self._url = url
        self._store_url = f"chdb://{tmp_path / 'clickhouse'}"

    async def __aenter__(self) -> DetachedStore:
        self.nc = await connect(self._url, "outage-test")
        self.js = self.nc.jetstream()
        await ensure_streams(self.js)
        self.store = ActivityStore(self._store_url)
        self.consumer = ActivityConsumer(self.js, self.store)
        self.stop = asyncio.Event()
        self.running = asyncio.create_task(self.consumer.run(self.stop))
        self._admin = open_client(self._store_url)
        await eventually(lambda: self.consumer.store_state is StoreState.OK)
        assert self.consumer.store_state is StoreState.OK
        await self.command("DETACH TABLE keyrail.activity")
        rows = _rows(100, "openai-detached")
        for start in range(0, len(rows), 4):
            batch = ActivityBatch(rows=rows[start : start + 4])
            await self.js.publish(subjects.ACTIVITY_REQUEST, encode_batch(batch))
        await eventually(lambda: self.consumer.store_state is StoreState.FAILING)
        assert self.consumer.store_state is StoreState.FAILING
        return self

    async def command(self, sql: str) -> None:
        await self.store._run(self._admin.command, sql)  # chDB is not thread-safe: the store's thread

    async def backlog(self, expected: int) -> int:
        """The backlog once it is `expected` (the acks reach JetStream a moment after the insert),
        or what it is after 5 s."""
        backlog = Backlog(self.js)
        for _ in range(50):
            await backlog.poll()
            if backlog.messages == expected:
                break
            await asyncio.sleep(0.1)
        return backlog.messages

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.running, 20)
        await self.store._run(self._admin.close)
        await self.store.close()
        await close_bus(self.nc)


async def test_failing_inserts_hold_the_rows_in_jetstream_and_retry_without_a_busy_loop(
    nats_server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    async with DetachedStore(nats_server[0], tmp_path) as outage:
        failures_before = REGISTRY.get_sample_value("keyrail_audit_insert_failures_total") or 0.0
        cpu_before, wall_before = time.process_time(), time.monotonic()
        await asyncio.sleep(8)
        failures = (REGISTRY.get_sample_value("keyrail_audit_insert_failures_total") or 0.0) - failures_before
        cpu_share = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
        assert 1 <= failures <= 6, failures  # retried after pauses of 1, 2, 4 and 5 s, not in a loop
        assert cpu_share < 0.2, cpu_share
        assert await outage.backlog(50) == 50  # not one acked: the rows wait in JetStream
        info = await outage.js.consumer_info(subjects.ACTIVITY_STREAM, subjects.AUDIT_DURABLE)
        assert info.num_redelivered == 0  # held, not given back and fetched again

        await outage.command("ATTACH TABLE keyrail.activity")
        await eventually(lambda: outage.consumer.store_state is StoreState.OK, timeout_s=15)
        counted = await outage.store.read_only_sql(
            "SELECT kind, count(), uniqExact(request_id) FROM keyrail.activity "
            "WHERE provider_slug = 'openai-detached' GROUP BY kind ORDER BY kind"
        )
        assert counted.rows == [["attempt", 100, 100], ["request", 100, 100]]
        assert await outage.backlog(0) == 0


async def test_stopping_while_inserts_fail_is_prompt_and_leaves_every_row_in_jetstream(
    nats_server: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    async with DetachedStore(nats_server[0], tmp_path) as outage:
        outage.stop.set()
        stopping = time.monotonic()
        await asyncio.wait_for(asyncio.shield(outage.running), 10)
        assert time.monotonic() - stopping < 7  # at most the pause under way, then one last try
        assert await outage.backlog(50) == 50  # given back to JetStream for the next start
