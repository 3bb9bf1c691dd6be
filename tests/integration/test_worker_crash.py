"""A provider worker SIGKILLed while it holds upstream calls: those requests are answered (504 at
their deadline) and keep their request rows, `keyrail up` restarts the worker, the next requests
succeed with both rows, and every publishing service exports the dropped-rows counter.

The kill is deterministic: the slow upstream holds every call for seconds, and the test kills
only once the worker has a connection open to it for each request in flight."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import PROVIDER_KEY, Tenant, provision
from tests.support.stack import KeyrailStack, MockUpstream, service_pids

pytestmark = pytest.mark.integration

IN_FLIGHT = 4
DEADLINE_MS = 4000


def _connections_to(port: int) -> int:
    """Established TCP connections to a local port, counted at the client side (/proc/net/tcp)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            count += 1
    return count


def _chat(stack: KeyrailStack, tenant: Tenant) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/v1/chat/completions",
        json={"model": tenant.model, "messages": [{"role": "user", "content": "one two three"}]},
        headers={"Authorization": f"Bearer {tenant.api_key}", "x-keyrail-timeout-ms": str(DEADLINE_MS)},
        timeout=30,
    )


def _dropped_counter_lines(url: str) -> list[str]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sorted(
        line for line in text.splitlines() if line.startswith("keyrail_activity_rows_dropped_total")
    )


def test_a_sigkilled_worker_is_restarted_and_every_answered_request_keeps_its_row(
    tmp_path: Path, upstream: MockUpstream
) -> None:
    slow = MockUpstream(PROVIDER_KEY, tmp_path / "slow-upstream.log", args=("--delay-ms", "3000")).start()
    stack = KeyrailStack(tmp_path / "data", tmp_path / "keyrail-up.log")
    stack.start()
    try:
        fast_tenant = provision(stack, upstream, "openai-worker-crash-mock")
        slow_tenant = provision(stack, slow, "openai-worker-crash-slow")
        before = _chat(stack, fast_tenant)
        assert before.status_code == 200, before.text
        (worker_pid,) = service_pids(stack.data_dir, "worker")

        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            held = [pool.submit(_chat, stack, slow_tenant) for _ in range(IN_FLIGHT)]
            deadline = time.monotonic() + 10
            while _connections_to(slow.port) < IN_FLIGHT:
                assert time.monotonic() < deadline, "the worker never held the calls"
                time.sleep(0.02)
            os.kill(worker_pid, signal.SIGKILL)
            answers = [future.result() for future in held]
        assert [a.status_code for a in answers] == [504] * IN_FLIGHT, [a.text for a in answers]

        deadline = time.monotonic() + 30
        while not (pids := service_pids(stack.data_dir, "worker")) or pids == [worker_pid]:
            assert time.monotonic() < deadline, "the worker was not restarted"
            time.sleep(0.1)
        stack.wait_healthy(30)
        after = [_chat(stack, fast_tenant) for _ in range(3)]
        assert [a.status_code for a in after] == [200] * 3, [a.text for a in after]

        for answer in (before, *after):  # request row (ingress) and attempt row (the worker)
            rows = stack.activity_rows(answer.headers["x-keyrail-request-id"], expected=2)
            assert sorted((r["kind"], r["http_status"]) for r in rows) == [("attempt", 200), ("request", 200)]
        for answer in answers:  # the ingress answered at the deadline and recorded it
            rows = stack.activity_rows(answer.headers["x-keyrail-request-id"], expected=1)
            request_rows = [r for r in rows if r["kind"] == "request"]
            assert [(r["http_status"], r["error_class"]) for r in request_rows] == [(504, "gateway_timeout")]

        assert b"worker exited with code -9; restarting" in stack.log_path.read_bytes()
        zero = [
            'keyrail_activity_rows_dropped_total{kind="attempt"} 0.0',
            'keyrail_activity_rows_dropped_total{kind="request"} 0.0',
        ]
        for url in (
            stack.url,
            f"http://127.0.0.1:{stack.base_port + 2}",
            f"http://127.0.0.1:{stack.base_port + 3}",
        ):
            assert _dropped_counter_lines(url) == zero, url  # ingress, router, the restarted worker
    finally:
        assert stack.stop() == 0
        slow.stop()
