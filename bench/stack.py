"""What the benchmark runs: `keyrail up` and `keyrail mock-upstream`, each on its own CPU set."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.procs import descendants
from tests.support.stack import free_port_block

OWNER = "kra-bench-owner-token-000000000000000000"


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_name: str, timeout_s: float) -> None:
    """Poll a gateway's health URL until 200; give up when its process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited early; see {log_name}")
        time.sleep(0.5)
    raise SystemExit(f"{url} not healthy after {timeout_s:.0f}s; see {log_name}")


class KeyrailUnderTest:
    """`keyrail up` pinned to the gateway CPUs, provisioned with one project, key and integration."""

    def __init__(
        self,
        workdir: Path,
        cpus: str,
        upstream_url: str,
        extra_env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        """`upstream_url` is the upstream's OpenAI base URL (ending in /v1); `python` is the
        interpreter whose installed Keyrail runs (another checkout's virtualenv, for bench.ab)."""
        self.base = free_port_block(8)
        self.url = f"http://127.0.0.1:{self.base}"
        self.upstream_url = upstream_url
        env = dict(os.environ)
        env.update(
            KEYRAIL_DATA_DIR=str(workdir / "data"),
            KEYRAIL_PORT=str(self.base),
            KEYRAIL_METRICS_BASE_PORT=str(self.base + 1),
            KEYRAIL_NATS_PORT=str(self.base + 5),
            KEYRAIL_VAULT_PORT=str(self.base + 6),
            KEYRAIL_BOOTSTRAP_TOKEN=OWNER,
        )
        env.update(extra_env or {})
        self.log = (workdir / "keyrail-up.log").open("wb")
        self.gateway = subprocess.Popen(
            ["taskset", "-c", cpus, python, "-m", "keyrail_cli.main", "up"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout_s: float = 180) -> None:
        wait_until_healthy(f"{self.url}/healthz", self.gateway, self.log.name, timeout_s)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method, self.url + path, json=body, headers={"Authorization": f"Bearer {OWNER}"}, timeout=30
        )
        response.raise_for_status()
        return response.json()

    def provision(self) -> str:
        project = self.admin("POST", "/admin/v1/projects", {"name": "bench"})
        key = self.admin("POST", f"/admin/v1/projects/{project['id']}/keys", {"name": "bench"})
        self.admin(
            "POST",
            "/admin/v1/integrations",
            {
                "name": "bench upstream",
                "provider": "openai",
                "provider_slug": "openai-bench-mock",
                "credentials": {"api_key": "sk-bench-not-checked"},
                "custom_host": self.upstream_url,
                "allow_http": True,
                "enabled_models": ["gpt-4o-mini"],
            },
        )
        return str(key["key"])

    def processes(self) -> dict[int, str]:
        """Every process of the stack, the `keyrail up` supervisor (it relays all logs) included."""
        return {self.gateway.pid: "supervisor", **descendants(self.gateway.pid)}

    def metric_sums(self) -> dict[str, float]:
        """Sum of each metric sample over its labels (requests, hop sums/counts), from the ingress
        and the audit service (activity lag: request start to row written)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        text += httpx.get(f"http://127.0.0.1:{self.base + 1}/metrics", timeout=10).text  # audit
        sums: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith("keyrail_"):
                continue
            name_labels, value = line.rsplit(" ", 1)
            hop = re.search(r'hop="([a-z_]+)"', name_labels)
            key = name_labels.split("{", 1)[0] + (f":{hop.group(1)}" if hop else "")
            sums[key] = sums.get(key, 0.0) + float(value)
        return sums

    def request_rows(self) -> int:
        result = self.admin(
            "POST",
            "/admin/v1/sql",
            {"sql": "SELECT count() FROM keyrail.activity FINAL WHERE kind = 'request'"},
        )
        return int(result["rows"][0][0])

    def stop(self) -> None:
        self.gateway.send_signal(signal.SIGINT)
        try:
            self.gateway.wait(60)
        except subprocess.TimeoutExpired:
            self.gateway.kill()
