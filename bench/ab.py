"""A/B benchmark of two checkouts on the same CPU, interleaved: `python -m bench.ab --before
/path/to/other/checkout/.venv/bin/python`.

Both stacks (`keyrail up`, provisioned alike) run at once on the gateway CPUs, idle but for the one
under load; each round sends the same wrk load to B (this checkout) and to A (the other), in
alternating order, so a drift of the machine's speed (a shared VM) hits both alike instead of
whichever ran second. Reports requests per second and CPU milliseconds per request per process,
per round and as medians, and writes a Markdown report under bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
from pathlib import Path

from bench.run import BODY, cpu_snapshot, say
from bench.stack import KeyrailUnderTest
from bench.wrk import require_wrk, run_wrk
from tests.support.stack import MockUpstream

Sample = tuple[float, dict[str, float]]  # (req/s, CPU ms per request by process)


def _round(stack: KeyrailUnderTest, key: str, connections: int, seconds: float, load_cpus: str) -> Sample:
    pids = {pid: name for pid, name in stack.processes().items() if name != "supervisor"}
    before = cpu_snapshot(pids)
    result = run_wrk(f"{stack.url}/v1/chat/completions", BODY, key, connections, seconds, load_cpus)
    after = cpu_snapshot(pids)
    answered = max(result.requests - result.errors, 1)
    cpu = {name: (after[name] - before.get(name, 0.0)) * 1000 / answered for name in after}
    cpu["total"] = sum(cpu.values())
    return result.rps, cpu


def _median(samples: list[Sample]) -> Sample:
    names = samples[0][1].keys()
    return (
        statistics.median(rps for rps, _ in samples),
        {name: statistics.median(cpu[name] for _, cpu in samples) for name in names},
    )


def _report(args: argparse.Namespace, a: list[Sample], b: list[Sample]) -> str:
    names = sorted(a[0][1], key=lambda n: (n == "total", n))
    lines = [
        f"# A/B: {args.label_a} vs {args.label_b}",
        "",
        f"`python -m bench.ab --rounds {args.rounds} --seconds {args.seconds:g} "
        f"--connections {args.connections}`: both stacks on CPUs {args.gateway_cpus}, load on "
        f"{args.load_cpus}, rounds interleaved (A then B, then B then A, ...).",
        "",
        "| round | req/s A | req/s B | CPU ms/req A | CPU ms/req B |",
        "|---|---|---|---|---|",
    ]
    for i, ((rps_a, cpu_a), (rps_b, cpu_b)) in enumerate(zip(a, b, strict=True), 1):
        lines.append(f"| {i} | {rps_a:.0f} | {rps_b:.0f} | {cpu_a['total']:.3f} | {cpu_b['total']:.3f} |")
    (rps_a, cpu_a), (rps_b, cpu_b) = _median(a), _median(b)
    lines += [
        "",
        f"Median: {rps_a:.0f} → {rps_b:.0f} req/s ({(rps_b / rps_a - 1) * 100:+.1f} %); "
        f"CPU {cpu_a['total']:.3f} → {cpu_b['total']:.3f} ms/request "
        f"({(cpu_b['total'] / cpu_a['total'] - 1) * 100:+.1f} %).",
        "",
        "| process | CPU ms/req A (median) | B (median) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {cpu_a[name]:.3f} | {cpu_b[name]:.3f} |" for name in names]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--before", required=True, help="python of the other checkout's virtualenv (A)")
    parser.add_argument("--label-a", default="before")
    parser.add_argument("--label-b", default="after")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--gateway-cpus", default="0")
    parser.add_argument("--load-cpus", default="1")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    require_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="keyrail-ab-"))
    upstream = MockUpstream(cpus=args.load_cpus).start()
    stacks: dict[str, KeyrailUnderTest] = {}
    samples: dict[str, list[Sample]] = {"A": [], "B": []}
    try:
        keys = {}
        for name, python in (("A", args.before), ("B", sys.executable)):
            say(f"starting {name} ({args.label_a if name == 'A' else args.label_b}): {python}")
            (workdir / name).mkdir()
            # One after the other: the second picks its ports once the first holds its own.
            stack = stacks[name] = KeyrailUnderTest(
                workdir / name, args.gateway_cpus, upstream.url, python=python
            )
            stack.wait_ready()
            keys[name] = stack.provision()
            run_wrk(f"{stack.url}/v1/chat/completions", BODY, keys[name], args.connections, 3, args.load_cpus)
        for i in range(args.rounds):
            order = ("A", "B") if i % 2 == 0 else ("B", "A")
            for name in order:
                sample = _round(stacks[name], keys[name], args.connections, args.seconds, args.load_cpus)
                samples[name].append(sample)
                rps, cpu = sample
                say(f"round {i + 1}/{args.rounds} {name}: {rps:.0f} req/s, {cpu['total']:.3f} ms CPU/req")
    finally:
        for stack in stacks.values():
            stack.stop()
        upstream.stop()
    report = _report(args, samples["A"], samples["B"])
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ab-{dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H%M%SZ')}.md"
    path.write_text(report)
    say(f"report: {path}")
    print(report)


if __name__ == "__main__":
    main()
