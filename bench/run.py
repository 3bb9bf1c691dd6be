"""Keyrail benchmark: `make bench` (or `python -m bench.run --help`).

Starts the whole stack (`keyrail up`: four services + nats-server + OpenBao, audit writing
every request to chDB) pinned to the gateway CPU set, and `keyrail mock-upstream` plus the load
generators on the other CPUs. For each connection count it runs wrk against the upstream
directly and then through Keyrail (interleaved), then streams with 5 ms between upstream events,
and writes a Markdown + JSON report under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.procs import cpu_seconds, descendants, rss_mib
from bench.report import PhaseResult, Report, StreamResult, write_report
from bench.streaming import run_streams
from bench.wrk import require_wrk, run_wrk

OWNER = "kra-bench-owner-token-000000000000000000"
SERVICES = ("ingress", "router", "worker", "audit")
BODY: dict[str, Any] = {
    "model": "openai-bench-mock/gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello to Keyrail"}],
}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port_block(size: int) -> int:
    from tests.support.stack import free_port_block as find

    return find(size)


class Stack:
    def __init__(self, workdir: Path, cpus: str, load_cpus: str) -> None:
        self.base = free_port_block(8)
        self.url = f"http://127.0.0.1:{self.base}"
        self.upstream_port = free_port_block(1)
        self.upstream_url = f"http://127.0.0.1:{self.upstream_port}"
        env = dict(os.environ)
        env.update(
            KEYRAIL_DATA_DIR=str(workdir / "data"),
            KEYRAIL_PORT=str(self.base),
            KEYRAIL_METRICS_BASE_PORT=str(self.base + 1),
            KEYRAIL_NATS_PORT=str(self.base + 5),
            KEYRAIL_VAULT_PORT=str(self.base + 6),
            KEYRAIL_BOOTSTRAP_TOKEN=OWNER,
        )
        self.log = (workdir / "keyrail-up.log").open("wb")
        self.upstream = subprocess.Popen(
            ["taskset", "-c", load_cpus, sys.executable, "-m", "keyrail_cli.main", "mock-upstream",
             "--port", str(self.upstream_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.gateway = subprocess.Popen(
            ["taskset", "-c", cpus, sys.executable, "-m", "keyrail_cli.main", "up"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.gateway.poll() is not None:
                raise SystemExit(f"keyrail up exited early; see {self.log.name}")
            time.sleep(0.5)
        raise SystemExit(f"stack not ready after {timeout_s}s; see {self.log.name}")

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
                "custom_host": f"{self.upstream_url}/v1",
                "allow_http": True,
                "enabled_models": ["gpt-4o-mini"],
            },
        )
        return str(key["key"])

    def processes(self) -> dict[int, str]:
        return descendants(self.gateway.pid)

    def metric_sums(self) -> dict[str, float]:
        """Sum of each ingress metric sample name over its labels (e.g. requests, hop sums/counts)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
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
        self.upstream.terminate()
        self.upstream.wait(10)


class RssSampler:
    """Peak RSS per process name while a phase runs (sampled every 200 ms)."""

    def __init__(self, pids: dict[int, str]) -> None:
        self.pids = pids
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, name in self.pids.items():
                try:
                    self.peak[name] = max(self.peak.get(name, 0.0), rss_mib(pid))
                except OSError:
                    pass
            self._stop.wait(0.2)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_snapshot(pids: dict[int, str]) -> dict[str, float]:
    snapshot: dict[str, float] = {}
    for pid, name in pids.items():
        try:
            snapshot[name] = snapshot.get(name, 0.0) + cpu_seconds(pid)
        except OSError:
            pass
    return snapshot


def gateway_phase(stack: Stack, key: str, connections: int, seconds: float, load_cpus: str) -> PhaseResult:
    pids = stack.processes()
    before_cpu, before_metrics = cpu_snapshot(pids), stack.metric_sums()
    with RssSampler(pids) as rss:
        result = run_wrk(f"{stack.url}/v1/chat/completions", BODY, key, connections, seconds, load_cpus)
    after_cpu, after_metrics = cpu_snapshot(pids), stack.metric_sums()
    answered = after_metrics.get("keyrail_ingress_requests_total", 0) - before_metrics.get(
        "keyrail_ingress_requests_total", 0
    )
    cpu_ms = {
        name: (after_cpu.get(name, 0) - before_cpu.get(name, 0)) * 1000 / max(answered, 1)
        for name in after_cpu
    }
    hops = {}
    for key_name, value in after_metrics.items():
        if key_name.startswith("keyrail_hop_seconds_sum:"):
            hop = key_name.split(":", 1)[1]
            count = after_metrics[f"keyrail_hop_seconds_count:{hop}"] - before_metrics.get(
                f"keyrail_hop_seconds_count:{hop}", 0
            )
            total = value - before_metrics.get(key_name, 0)
            hops[hop] = total / count * 1000 if count else 0.0
    overhead_count = after_metrics.get("keyrail_ingress_overhead_seconds_count", 0) - before_metrics.get(
        "keyrail_ingress_overhead_seconds_count", 0
    )
    overhead_sum = after_metrics.get("keyrail_ingress_overhead_seconds_sum", 0) - before_metrics.get(
        "keyrail_ingress_overhead_seconds_sum", 0
    )
    return PhaseResult(
        target="keyrail",
        connections=connections,
        wrk=result,
        answered=int(answered),
        cpu_ms_per_request=cpu_ms,
        rss_peak_mib=rss.peak,
        hop_mean_ms=hops,
        overhead_mean_ms=overhead_sum / overhead_count * 1000 if overhead_count else 0.0,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each wrk phase")
    parser.add_argument("--connections", default="1,16,64", help="comma-separated connection counts")
    parser.add_argument("--gateway-cpus", default="0", help="CPU set for Keyrail and its infrastructure")
    parser.add_argument("--load-cpus", default="1", help="CPU set for the mock upstream and load generators")
    parser.add_argument("--streams", type=int, default=300, help="streams per streaming phase")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    require_wrk()
    connections = [int(c) for c in args.connections.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="keyrail-bench-"))
    say(f"keyrail up on CPUs {args.gateway_cpus}, upstream + load on CPUs {args.load_cpus} ({workdir})")
    stack = Stack(workdir, args.gateway_cpus, args.load_cpus)
    phases: list[PhaseResult] = []
    streams: list[StreamResult] = []
    try:
        stack.wait_ready()
        key = stack.provision()
        say("warming up (3 s at 16 connections)")
        run_wrk(f"{stack.url}/v1/chat/completions", BODY, key, 16, 3, args.load_cpus)
        rows_before, answered_before = (
            stack.request_rows(),
            stack.metric_sums()["keyrail_ingress_requests_total"],
        )
        for c in connections:
            say(f"{c} connection(s): direct to the upstream for {args.seconds:.0f} s")
            direct = run_wrk(
                f"{stack.upstream_url}/v1/chat/completions", BODY, None, c, args.seconds, args.load_cpus
            )
            phases.append(PhaseResult(target="direct", connections=c, wrk=direct, answered=direct.requests))
            say(f"{c} connection(s): through Keyrail for {args.seconds:.0f} s")
            phases.append(gateway_phase(stack, key, c, args.seconds, args.load_cpus))
            say(f"  direct {direct.rps:.0f} req/s, keyrail {phases[-1].wrk.rps:.0f} req/s")
        stream_body = {**BODY, "stream": True, "mock": {"chunk_delay_ms": 5}}
        for c in (1, 16):
            for target, url, api_key in (
                ("direct", f"{stack.upstream_url}/v1/chat/completions", None),
                ("keyrail", f"{stack.url}/v1/chat/completions", key),
            ):
                say(f"streaming {args.streams} streams at concurrency {c}: {target}")
                stats = asyncio.run(run_streams(url, stream_body, api_key, c, args.streams))
                streams.append(StreamResult(target=target, concurrency=c, stats=stats))
        answered = stack.metric_sums()["keyrail_ingress_requests_total"] - answered_before
        say(f"waiting for the audit service to write {answered:.0f} request rows")
        deadline = time.monotonic() + 120
        written = 0
        while time.monotonic() < deadline:
            written = stack.request_rows() - rows_before
            if written >= answered:
                break
            time.sleep(1)
    finally:
        say("stopping the stack")
        stack.stop()
    report = Report(
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        gateway_cpus=args.gateway_cpus,
        load_cpus=args.load_cpus,
        seconds=args.seconds,
        phases=phases,
        streams=streams,
        requests_answered=int(answered),
        request_rows_written=int(written),
    )
    markdown, json_path = write_report(report, args.out)
    say(f"report: {markdown} and {json_path}")
    print(markdown.read_text())


if __name__ == "__main__":
    main()
