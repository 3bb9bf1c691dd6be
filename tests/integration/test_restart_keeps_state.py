"""`keyrail up` stopped and started again keeps projects, keys, integrations and credentials;
a service that dies is restarted by the supervisor."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import provision
from tests.support.stack import KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration


def _service_pids(data_dir: Path, service: str) -> list[int]:
    """PIDs of `keyrail <service>` processes started for this data dir (read from /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"keyrail_cli.main" in cmdline and service.encode() in cmdline:
            if f"KEYRAIL_DATA_DIR={data_dir}".encode() in environ:
                pids.append(int(proc.name))
    return pids


def _chat(stack: KeyrailStack, api_key: str, model: str) -> str:
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=api_key, max_retries=0)
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "still there?"}]
    )
    return completion.choices[0].message.content or ""


def test_restart_keeps_state_and_dead_services_come_back(tmp_path: Path, upstream: MockUpstream) -> None:
    stack = KeyrailStack(tmp_path / "data", tmp_path / "keyrail-up.log")
    stack.start()
    try:
        tenant = provision(stack, upstream, "openai-restart-mock")
        assert _chat(stack, tenant.api_key, tenant.model) == DEFAULT_REPLY

        # A router that dies is restarted with backoff, and the log says so.
        (router_pid,) = _service_pids(stack.data_dir, "router")
        os.kill(router_pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = _service_pids(stack.data_dir, "router")
            if pids and pids != [router_pid]:
                break
            time.sleep(0.2)
        stack.wait_healthy(60)
        assert b"router exited with code -9; restarting" in stack.log_path.read_bytes()
        assert _chat(stack, tenant.api_key, tenant.model) == DEFAULT_REPLY
    finally:
        assert stack.stop() == 0
    for service in ("ingress", "router", "worker", "audit"):
        assert _service_pids(stack.data_dir, service) == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack.url}/healthz", timeout=1)

    restarted = KeyrailStack(stack.data_dir, stack.log_path, base_port=stack.base_port)
    restarted.start()
    try:
        projects = restarted.admin("GET", "/admin/v1/projects").json()["data"]
        assert tenant.project_id in [p["id"] for p in projects]
        integrations = restarted.admin("GET", "/admin/v1/integrations").json()["data"]
        assert "openai-restart-mock" in [i["provider_slug"] for i in integrations]
        # Same API key, and the credential is read back from OpenBao's raft storage.
        assert _chat(restarted, tenant.api_key, tenant.model) == DEFAULT_REPLY
        # Every request row survives the restart (three chats), once the audit has caught up.
        deadline = time.monotonic() + 30
        requests: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(requests) < 3:
            rows = restarted.admin("GET", "/admin/v1/activity?slug=openai-restart-mock&limit=100").json()[
                "data"
            ]
            requests = [r for r in rows if r["kind"] == "request"]
            time.sleep(0.3)
        assert len(requests) == 3
    finally:
        assert restarted.stop() == 0
