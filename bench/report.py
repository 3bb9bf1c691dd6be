"""The benchmark report: Markdown for people, JSON for tools, both under bench/results/."""

from __future__ import annotations

from pathlib import Path

import msgspec

from bench.streaming import StreamStats
from bench.wrk import WrkResult

KEYRAIL_SERVICES = ("ingress", "router", "worker", "audit")
INFRASTRUCTURE = ("nats-server", "openbao")


class PhaseResult(msgspec.Struct):
    target: str  # "direct" or "keyrail"
    connections: int
    wrk: WrkResult
    answered: int
    cpu_ms_per_request: dict[str, float] = {}
    rss_peak_mib: dict[str, float] = {}
    hop_mean_ms: dict[str, float] = {}
    overhead_mean_ms: float = 0.0


class StreamResult(msgspec.Struct):
    target: str
    concurrency: int
    stats: StreamStats


class Report(msgspec.Struct):
    started: str
    machine: str
    gateway_cpus: str
    load_cpus: str
    seconds: float
    phases: list[PhaseResult]
    streams: list[StreamResult]
    requests_answered: int
    request_rows_written: int


def _pair(report: Report, connections: int) -> tuple[PhaseResult, PhaseResult]:
    direct = next(p for p in report.phases if p.target == "direct" and p.connections == connections)
    keyrail = next(p for p in report.phases if p.target == "keyrail" and p.connections == connections)
    return direct, keyrail


def render(report: Report) -> str:
    lines = [
        f"# Keyrail benchmark {report.started}",
        "",
        f"Machine: {report.machine}. Keyrail (4 services + nats-server + OpenBao, audit writing every "
        f"request to chDB) pinned to CPUs `{report.gateway_cpus}`; mock upstream and load generators on "
        f"`{report.load_cpus}`. wrk with keep-alive, {report.seconds:.0f} s per phase, non-streaming chat "
        "completions.",
        "",
        "## Non-streaming",
        "",
        "| conns | direct req/s | keyrail req/s | direct p50 / p99 ms | keyrail p50 / p90 / p99 ms "
        "| added p50 / p99 ms | CPU ms/request (all processes) | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    connections = sorted({p.connections for p in report.phases})
    for c in connections:
        direct, keyrail = _pair(report, c)
        d, k = direct.wrk, keyrail.wrk
        cpu_total = sum(keyrail.cpu_ms_per_request.values())
        lines.append(
            f"| {c} | {d.rps:.0f} | {k.rps:.0f} | {d.p50_us / 1000:.2f} / {d.p99_us / 1000:.2f} "
            f"| {k.p50_us / 1000:.2f} / {k.p90_us / 1000:.2f} / {k.p99_us / 1000:.2f} "
            f"| {(k.p50_us - d.p50_us) / 1000:+.2f} / {(k.p99_us - d.p99_us) / 1000:+.2f} "
            f"| {cpu_total:.3f} | {k.errors} |"
        )
    names = sorted({n for p in report.phases if p.target == "keyrail" for n in p.cpu_ms_per_request})
    lines += ["", "## CPU per request, by process (ms)", "", "| conns | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    for c in connections:
        _, keyrail = _pair(report, c)
        lines.append(
            f"| {c} | " + " | ".join(f"{keyrail.cpu_ms_per_request.get(n, 0):.3f}" for n in names) + " |"
        )
    lines += [
        "",
        "## Peak RSS, by process (MiB)",
        "",
        "| conns | " + " | ".join(names) + " | Keyrail services |",
    ]
    lines.append("|---|" + "---|" * (len(names) + 1))
    for c in connections:
        _, keyrail = _pair(report, c)
        services = sum(v for n, v in keyrail.rss_peak_mib.items() if n in KEYRAIL_SERVICES)
        lines.append(
            f"| {c} | "
            + " | ".join(f"{keyrail.rss_peak_mib.get(n, 0):.0f}" for n in names)
            + f" | {services:.0f} |"
        )
    hops = sorted({h for p in report.phases for h in p.hop_mean_ms})
    lines += ["", "## Per-hop mean wall time (ms), from the events' timestamps", ""]
    lines += [
        "`activity_row_written`: from a request's start to the insert of its batch (oldest row of each"
        " insert), measured by the audit service.",
        "",
    ]
    lines += [
        "| conns | " + " | ".join(hops) + " | x-keyrail-overhead-ms mean |",
        "|---|" + "---|" * (len(hops) + 1),
    ]
    for c in connections:
        _, keyrail = _pair(report, c)
        lines.append(
            f"| {c} | "
            + " | ".join(f"{keyrail.hop_mean_ms.get(h, 0):.3f}" for h in hops)
            + f" | {keyrail.overhead_mean_ms:.3f} |"
        )
    lines += [
        "",
        "## Streaming (5 ms between upstream events)",
        "",
        "| concurrency | target | streams | errors | TTFB p50 ms | first token p50 / p90 / p99 ms "
        "| total p50 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report.streams:
        st = s.stats
        lines.append(
            f"| {s.concurrency} | {s.target} | {st.streams} | {st.errors} | {st.ttfb_p50_ms:.2f} "
            f"| {st.ttft_p50_ms:.2f} / {st.ttft_p90_ms:.2f} / {st.ttft_p99_ms:.2f} | {st.total_p50_ms:.2f} |"
        )
    for c in sorted({s.concurrency for s in report.streams}):
        direct_ttft = next(s.stats for s in report.streams if s.concurrency == c and s.target == "direct")
        keyrail_ttft = next(s.stats for s in report.streams if s.concurrency == c and s.target == "keyrail")
        lines.append(
            f"\nAdded time to first token at concurrency {c}: p50 "
            f"{keyrail_ttft.ttft_p50_ms - direct_ttft.ttft_p50_ms:+.2f} ms."
        )
    litellm = [p for p in report.phases if p.target == "litellm"]
    if litellm:
        lines += [
            "",
            "## LiteLLM proxy on the same CPUs and upstream (comparison mode)",
            "",
            "| conns | litellm req/s | keyrail req/s | litellm p50 / p99 ms | CPU ms/request | peak RSS MiB "
            "| Keyrail throughput ÷ LiteLLM |",
            "|---|---|---|---|---|---|---|",
        ]
        for phase in litellm:
            _, keyrail = _pair(report, phase.connections)
            w = phase.wrk
            lines.append(
                f"| {phase.connections} | {w.rps:.0f} | {keyrail.wrk.rps:.0f} | {w.p50_us / 1000:.2f} / "
                f"{w.p99_us / 1000:.2f} | {sum(phase.cpu_ms_per_request.values()):.3f} "
                f"| {sum(phase.rss_peak_mib.values()):.0f} | {keyrail.wrk.rps / max(w.rps, 1):.1f}x |"
            )
    lost = max(report.requests_answered - report.request_rows_written, 0)
    lines += [
        "",
        "## Activity log",
        "",
        f"Requests answered by the ingress during the measured phases: {report.requests_answered}; "
        f"request rows written to ClickHouse: {report.request_rows_written}; lost: {lost}.",
        "",
    ]
    return "\n".join(lines)


def write_report(report: Report, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    stamp = report.started.replace(":", "").replace("+0000", "Z")
    markdown = out / f"bench-{stamp}.md"
    json_path = out / f"bench-{stamp}.json"
    markdown.write_text(render(report))
    json_path.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2))
    return markdown, json_path
