"""Runs the real `keyrail up` (nats-server, OpenBao, chDB and the four services) for tests.

Nothing is faked: the stack is the same command an operator runs, with its own data dir and
free ports, and its whole output captured to a log file the secret-leak tests search.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

OWNER_TOKEN = "kra-test-owner-token-0123456789abcdef"


def free_port_block(size: int) -> int:
    """A base port such that base..base+size-1 are all free right now."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size >= 65535:
            continue
        if all(_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free port block")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class KeyrailStack:
    """One `keyrail up` process tree; ports: ingress base, metrics base+1..3, NATS base+5, Vault base+6/7."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        base_port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.base_port = base_port or free_port_block(8)
        self.port = self.base_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KEYRAIL_DATA_DIR=str(self.data_dir),
            KEYRAIL_PORT=str(self.port),
            KEYRAIL_METRICS_BASE_PORT=str(self.base_port + 1),
            KEYRAIL_NATS_PORT=str(self.base_port + 5),
            KEYRAIL_VAULT_PORT=str(self.base_port + 6),
            KEYRAIL_BOOTSTRAP_TOKEN=OWNER_TOKEN,
        )
        for external in ("KEYRAIL_NATS_URL", "KEYRAIL_VAULT_ADDR", "KEYRAIL_CLICKHOUSE_URL"):
            env.pop(external, None)
        env.update(self.extra_env)
        return env

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.base_port + 5}"

    def start(self, timeout_s: float = 180.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "keyrail_cli.main", "up"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self.wait_healthy(timeout_s)
        except BaseException:
            self.stop()  # never leave a half-started stack behind a failed test session
            raise

    def launch(self, *args: str) -> float:
        """Start `keyrail up [args]` without waiting; returns `time.monotonic()` just before the
        launch (the first-run tests time the ready line against it). `stop()` ends it."""
        log = self.log_path.open("ab")
        launched = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "keyrail_cli.main", "up", *args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return launched

    def wait_for_output(self, text: str, timeout_s: float, poll_s: float = 0.02) -> tuple[str, float]:
        """The first line of the output containing `text`, and `time.monotonic()` when it was seen."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            output = self.log_path.read_text(errors="replace")
            for line in output[: output.rfind("\n") + 1].splitlines():  # whole lines only
                if text in line:
                    return line, time.monotonic()
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"keyrail up exited with {self.process.returncode}; see {self.log_path}")
            time.sleep(poll_s)
        raise TimeoutError(f"no {text!r} in the output after {timeout_s}s; see {self.log_path}")

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"keyrail up exited with {self.process.returncode}; see {self.log_path}")
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.3)
        raise TimeoutError(f"stack not healthy after {timeout_s}s (last: {last}); see {self.log_path}")

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGINT, as an operator's Ctrl-C; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def admin(
        self,
        method: str,
        path: str,
        json: Any = None,
        token: str = OWNER_TOKEN,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.url}{path}",
            json=json,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
            timeout=30,
        )

    def change(
        self, method: str, path: str, json: Any = None, *, of: str, token: str = OWNER_TOKEN
    ) -> httpx.Response:
        """A change of the aggregate whose GET path is `of`, naming the version read just before
        (as a client does: read, then change with If-Match)."""
        read = self.admin("GET", of, token=OWNER_TOKEN)
        assert read.status_code == 200, read.text
        version = read.json()["version"]
        return self.admin(method, path, json, token=token, headers={"If-Match": f'"{version}"'})

    def sql(self, sql: str) -> list[list[Any]]:
        """The rows of a read-only query through `POST /admin/v1/sql` (as the owner)."""
        response = self.admin("POST", "/admin/v1/sql", {"sql": sql})
        assert response.status_code == 200, response.text
        rows: list[list[Any]] = response.json()["rows"]
        return rows

    def assert_each_request_written_once(self, slug: str, requests: int) -> None:
        """Every request of the slug has one request row and one attempt row (each request id
        once, without FINAL: a duplicate would count), and the daily cost rollup counts each once."""
        by_kind = self.sql(
            "SELECT kind, count(), uniqExact(request_id) FROM keyrail.activity "
            f"WHERE provider_slug = '{slug}' GROUP BY kind ORDER BY kind"
        )
        assert by_kind == [["attempt", requests, requests], ["request", requests, requests]]
        rollup = self.sql(f"SELECT sum(requests) FROM keyrail.costs_daily WHERE provider_slug = '{slug}'")
        assert rollup == [[requests]]

    def activity_rows(
        self, request_id: str, expected: int = 2, timeout_s: float = 20.0
    ) -> list[dict[str, Any]]:
        """The activity rows of a request, once the audit service has written `expected` of them."""
        deadline = time.monotonic() + timeout_s
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            response = self.admin("GET", f"/admin/v1/activity?request_id={request_id}")
            assert response.status_code == 200, response.text
            rows = response.json()["data"]
            if len(rows) >= expected:
                return rows
            time.sleep(0.2)
        raise AssertionError(f"only {len(rows)} activity rows for {request_id} after {timeout_s}s: {rows}")


class MockUpstream:
    """`keyrail mock-upstream` as an operator runs it; optionally requiring a provider key and
    pinned to a CPU set (the benchmark keeps it off the gateway's CPUs)."""

    def __init__(
        self,
        api_key: str | None = None,
        log_path: Path | None = None,
        cpus: str | None = None,
        args: tuple[str, ...] = (),
        tls: tuple[Path, Path, str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.args = args  # more `keyrail mock-upstream` flags, e.g. ("--delay-ms", "600000")
        self.tls = tls  # (certificate file, key file, the issuing CA's PEM): serve HTTPS
        self.port = free_port_block(1)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/v1"
        self.log_path = log_path
        self.cpus = cpus
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MockUpstream:
        command = [sys.executable, "-m", "keyrail_cli.main", "mock-upstream", "--port", str(self.port)]
        if self.api_key:
            command += ["--require-key", self.api_key]
        command += self.args
        if self.tls:
            command += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        if self.cpus:
            command = ["taskset", "-c", self.cpus, *command]
        self.process = subprocess.Popen(
            command,
            stdout=self.log_path.open("ab") if self.log_path else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        verify = ssl.create_default_context(cadata=self.tls[2]) if self.tls else True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if (
                    httpx.get(self.url.removesuffix("/v1") + "/healthz", timeout=1, verify=verify).status_code
                    == 200
                ):
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("mock upstream did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


def service_pids(data_dir: Path, service: str) -> list[int]:
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
