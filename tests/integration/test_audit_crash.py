"""The audit service SIGKILLed in the middle of a 2,000-request run, then restarted by `keyrail up`:
ClickHouse ends with exactly 2,000 request rows and their 2,000 attempt rows, none twice (even
before merges), the daily cost rollup counts 2,000 requests, and the backlog is written within
10 s of the restart (held messages are redelivered seconds after the holder died)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import provision
from tests.support.stack import KeyrailStack, MockUpstream, service_pids

pytestmark = pytest.mark.integration

REQUESTS = 2000
SLUG = "openai-crash-mock"


async def _run(stack: KeyrailStack, key: str, model: str, kill_after: int, kill: Any) -> list[int]:
    statuses: list[int] = []
    sent = 0
    limit = asyncio.Semaphore(32)
    body = {"model": model, "messages": [{"role": "user", "content": "one two three"}]}
    async with httpx.AsyncClient(base_url=stack.url, headers={"Authorization": f"Bearer {key}"}) as client:

        async def one() -> None:
            nonlocal sent
            async with limit:
                response = await client.post("/v1/chat/completions", json=body, timeout=60)
                statuses.append(response.status_code)
                sent += 1
                if sent == kill_after:
                    kill()

        await asyncio.gather(*(one() for _ in range(REQUESTS)))
    return statuses


def test_sigkill_of_the_audit_service_mid_run_loses_and_doubles_nothing(
    tmp_path: Path, upstream: MockUpstream
) -> None:
    stack = KeyrailStack(tmp_path / "data", tmp_path / "keyrail-up.log")
    stack.start()
    try:
        tenant = provision(stack, upstream, SLUG)
        (audit_pid,) = service_pids(stack.data_dir, "audit")
        killed_at: list[float] = []

        def kill() -> None:
            os.kill(audit_pid, signal.SIGKILL)
            killed_at.append(time.monotonic())

        statuses = asyncio.run(_run(stack, tenant.api_key, tenant.model, REQUESTS // 2, kill))
        assert statuses == [200] * REQUESTS and killed_at  # requests keep being served

        deadline = time.monotonic() + 90
        while not (pids := service_pids(stack.data_dir, "audit")) or pids == [audit_pid]:
            assert time.monotonic() < deadline, "the audit service was not restarted"
            time.sleep(0.2)
        stack.wait_healthy(60)
        restarted_at = time.monotonic()
        count = f"SELECT count() FROM keyrail.activity WHERE provider_slug = '{SLUG}'"  # no FINAL
        while stack.sql(count) != [[2 * REQUESTS]]:
            assert time.monotonic() - restarted_at < 10, stack.sql(count)
            time.sleep(0.25)

        stack.assert_each_request_written_once(SLUG, REQUESTS)
        assert b"audit exited with code -9; restarting" in stack.log_path.read_bytes()
    finally:
        assert stack.stop() == 0
