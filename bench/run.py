"""Keyrail benchmark: `make bench` (or `python -m bench.run --help`).

Starts the whole stack (`keyrail up`: four services + nats-server + OpenBao, audit writing
every request to chDB) pinned to the gateway CPU set, and `keyrail mock-upstream` plus the load
generators on the other CPUs. For each connection count it runs wrk against the upstream
directly and then through Keyrail (interleaved), then streams with 5 ms between upstream events,
and writes a Markdown + JSON report under bench/results/. `--compare-litellm` then runs LiteLLM's
proxy on the same CPUs against the same upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.litellm import LiteLLMProxy
from bench.procs import cpu_seconds, rss_mib
from bench.report import PhaseResult, Report, StreamResult, write_report
from bench.stack import KeyrailUnderTest
from bench.streaming import run_streams
from bench.wrk import require_wrk, run_wrk
from tests.support.stack import MockUpstream, free_port_block

BODY: dict[str, Any] = {
    "model": "openai-bench-mock/gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello to Keyrail"}],
}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


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


def _delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def measure_phase(
    target: str,
    url: str,
    body: dict[str, Any],
    api_key: str | None,
    pids: dict[int, str],
    connections: int,
    seconds: float,
    load_cpus: str,
    metrics: Callable[[], dict[str, float]] | None = None,
) -> PhaseResult:
    """One wrk run against a gateway, with CPU and RSS per process and (for Keyrail) per-hop times."""
    before_cpu, before = cpu_snapshot(pids), (metrics() if metrics else {})
    with RssSampler(pids) as rss:
        result = run_wrk(url, body, api_key, connections, seconds, load_cpus)
    after_cpu, after = cpu_snapshot(pids), (metrics() if metrics else {})
    answered = _delta(after, before, "keyrail_ingress_requests_total") if metrics else float(result.requests)
    cpu_ms = {name: _delta(after_cpu, before_cpu, name) * 1000 / max(answered, 1) for name in after_cpu}
    hops = {}
    for name in after:
        if name.startswith("keyrail_hop_seconds_sum:"):
            hop = name.split(":", 1)[1]
            count = _delta(after, before, f"keyrail_hop_seconds_count:{hop}")
            hops[hop] = _delta(after, before, name) / count * 1000 if count else 0.0
    lag_count = _delta(after, before, "keyrail_audit_activity_lag_seconds_count")
    if lag_count:
        hops["activity_row_written"] = (
            _delta(after, before, "keyrail_audit_activity_lag_seconds_sum") / lag_count * 1000
        )
    overhead_count = _delta(after, before, "keyrail_ingress_overhead_seconds_count")
    overhead_ms = (
        _delta(after, before, "keyrail_ingress_overhead_seconds_sum") * 1000 / max(overhead_count, 1)
    )
    return PhaseResult(
        target=target,
        connections=connections,
        wrk=result,
        answered=int(answered),
        cpu_ms_per_request=cpu_ms,
        rss_peak_mib=rss.peak,
        hop_mean_ms=hops,
        overhead_mean_ms=overhead_ms,
    )


def run_keyrail(
    args: argparse.Namespace, upstream: MockUpstream, connections: list[int], workdir: Path
) -> Report:
    keyrail = KeyrailUnderTest(workdir, args.gateway_cpus, upstream.url)
    phases: list[PhaseResult] = []
    streams: list[StreamResult] = []
    answered = written = 0
    try:
        keyrail.wait_ready()
        key = keyrail.provision()
        chat_url = f"{keyrail.url}/v1/chat/completions"
        say("warming up (3 s at 16 connections)")
        run_wrk(chat_url, BODY, key, 16, 3, args.load_cpus)
        rows_before = keyrail.request_rows()
        answered_before = keyrail.metric_sums()["keyrail_ingress_requests_total"]
        pids = keyrail.processes()
        for c in connections:
            say(f"{c} connection(s): direct to the upstream for {args.seconds:.0f} s")
            direct = run_wrk(f"{upstream.url}/chat/completions", BODY, None, c, args.seconds, args.load_cpus)
            phases.append(PhaseResult(target="direct", connections=c, wrk=direct, answered=direct.requests))
            say(f"{c} connection(s): through Keyrail for {args.seconds:.0f} s")
            phases.append(
                measure_phase(
                    "keyrail", chat_url, BODY, key, pids, c, args.seconds, args.load_cpus, keyrail.metric_sums
                )
            )
            say(f"  direct {direct.rps:.0f} req/s, keyrail {phases[-1].wrk.rps:.0f} req/s")
        stream_body = {**BODY, "stream": True, "mock": {"chunk_delay_ms": 5}}
        for c in (1, 16):
            for target, url, api_key in (
                ("direct", f"{upstream.url}/chat/completions", None),
                ("keyrail", chat_url, key),
            ):
                say(f"streaming {args.streams} streams at concurrency {c}: {target}")
                stats = asyncio.run(run_streams(url, stream_body, api_key, c, args.streams))
                streams.append(StreamResult(target=target, concurrency=c, stats=stats))
        answered = int(keyrail.metric_sums()["keyrail_ingress_requests_total"] - answered_before)
        say(f"waiting for the audit service to write {answered} request rows")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            written = keyrail.request_rows() - rows_before
            if written >= answered:
                break
            time.sleep(1)
    finally:
        say("stopping Keyrail")
        keyrail.stop()
    return Report(
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        gateway_cpus=args.gateway_cpus,
        load_cpus=args.load_cpus,
        seconds=args.seconds,
        phases=phases,
        streams=streams,
        requests_answered=answered,
        request_rows_written=written,
    )


def run_litellm(
    args: argparse.Namespace, upstream: MockUpstream, connections: list[int], workdir: Path
) -> list[PhaseResult]:
    proxy = LiteLLMProxy(workdir, args.gateway_cpus, upstream.url, free_port_block(1))
    body = {**BODY, "model": "gpt-4o-mini"}
    phases = []
    try:
        proxy.wait_ready()
        url = f"{proxy.url}/v1/chat/completions"
        run_wrk(url, body, "sk-litellm-bench", 16, 3, args.load_cpus)
        for c in connections:
            say(f"{c} connection(s): through LiteLLM for {args.seconds:.0f} s")
            phases.append(
                measure_phase(
                    "litellm",
                    url,
                    body,
                    "sk-litellm-bench",
                    proxy.processes(),
                    c,
                    args.seconds,
                    args.load_cpus,
                )
            )
            say(f"  litellm {phases[-1].wrk.rps:.0f} req/s")
    finally:
        proxy.stop()
    return phases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each wrk phase")
    parser.add_argument("--connections", default="1,16,64", help="comma-separated connection counts")
    parser.add_argument("--gateway-cpus", default="0", help="CPU set for the gateway and its infrastructure")
    parser.add_argument("--load-cpus", default="1", help="CPU set for the mock upstream and load generators")
    parser.add_argument("--streams", type=int, default=300, help="streams per streaming phase")
    parser.add_argument("--compare-litellm", action="store_true", help="also run LiteLLM's proxy (own venv)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    require_wrk()
    connections = [int(c) for c in args.connections.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="keyrail-bench-"))
    say(
        f"gateway on CPUs {args.gateway_cpus}; upstream and load on CPUs {args.load_cpus}; work dir {workdir}"
    )
    upstream = MockUpstream(cpus=args.load_cpus).start()
    try:
        report = run_keyrail(args, upstream, connections, workdir)
        if args.compare_litellm:
            report.phases.extend(run_litellm(args, upstream, connections, workdir))
    finally:
        upstream.stop()
    markdown, json_path = write_report(report, args.out)
    say(f"report: {markdown} and {json_path}")
    print(markdown.read_text())


if __name__ == "__main__":
    main()
