"""What an open circuit costs a request that falls back past it: `python -m bench.breaker`.

Two integrations of one provider: `openai-bench-dead` (nothing listens on its host) and the
healthy `openai-bench-mock`; `openai/gpt-4o-mini` tries them in slug order, the dead one first.
Its circuit is opened first (connection failures), then wrk measures, at each connection count,
the healthy target alone (`openai-bench-mock/gpt-4o-mini`, the router's fast path) against the
chain that skips the open circuit (`openai/gpt-4o-mini`: a breaker lookup, the skip's activity row,
then the healthy target). The median difference is what the open circuit adds. Writes a Markdown
report under bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import tempfile
import time
from pathlib import Path

import httpx

from bench.run import BODY, say
from bench.stack import KeyrailUnderTest
from bench.wrk import WrkResult, require_wrk, run_wrk
from tests.support.stack import MockUpstream

HEALTHY, DEAD = "openai-bench-mock", "openai-bench-dead"
MODEL = "gpt-4o-mini"
COOLDOWN_S = 600  # no probe during the measurement: every chained request skips the dead target


def _closed_port() -> int:
    """A local port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _open_the_circuit(keyrail: KeyrailUnderTest, key: str) -> None:
    dead = {**BODY, "model": f"{DEAD}/{MODEL}"}
    for _ in range(5):
        httpx.post(
            f"{keyrail.url}/v1/chat/completions", json=dead, headers={"Authorization": f"Bearer {key}"}
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        circuits = keyrail.admin("GET", f"/admin/v1/integrations/{DEAD}/health")["data"]
        if any(c["model"] == MODEL and c["state"] == "open" for c in circuits):
            return
        time.sleep(0.2)
    raise SystemExit(f"the circuit of {DEAD} did not open")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.breaker", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each wrk phase")
    parser.add_argument("--connections", default="1,16", help="comma-separated connection counts")
    parser.add_argument("--gateway-cpus", default="0")
    parser.add_argument("--load-cpus", default="1")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    require_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="keyrail-bench-breaker-"))
    upstream = MockUpstream(cpus=args.load_cpus).start()
    env = {"KEYRAIL_BREAKER_COOLDOWN_S": str(COOLDOWN_S)}
    keyrail = KeyrailUnderTest(workdir, args.gateway_cpus, upstream.url, extra_env=env)
    rows: list[tuple[int, WrkResult, WrkResult]] = []
    try:
        keyrail.wait_ready()
        key = keyrail.provision()
        dead_host = f"http://127.0.0.1:{_closed_port()}/v1"
        keyrail.admin(
            "POST",
            "/admin/v1/integrations",
            {
                "name": "dead upstream",
                "provider": "openai",
                "provider_slug": DEAD,
                "credentials": {"api_key": "sk-bench-not-checked"},
                "custom_host": dead_host,
                "allow_http": True,
                "enabled_models": [MODEL],
            },
        )
        say(f"opening the circuit of {DEAD}")
        _open_the_circuit(keyrail, key)
        url = f"{keyrail.url}/v1/chat/completions"
        single, chained = {**BODY, "model": f"{HEALTHY}/{MODEL}"}, {**BODY, "model": f"openai/{MODEL}"}
        run_wrk(url, single, key, 16, 3, args.load_cpus)  # warm-up
        for c in (int(n) for n in args.connections.split(",")):
            say(f"{c} connection(s): the healthy target alone, then the chain past the open circuit")
            alone = run_wrk(url, single, key, c, args.seconds, args.load_cpus)
            past = run_wrk(url, chained, key, c, args.seconds, args.load_cpus)
            rows.append((c, alone, past))
            say(
                f"  p50 {alone.p50_us / 1000:.2f} ms alone, {past.p50_us / 1000:.2f} ms past the open circuit"
            )
    finally:
        keyrail.stop()
        upstream.stop()
    started = dt.datetime.now(dt.UTC)
    lines = [
        f"# Open-circuit fallback cost {started.isoformat(timespec='seconds')}",
        "",
        f"`python -m bench.breaker --seconds {args.seconds:.0f} --connections {args.connections}`; gateway "
        f"on CPUs `{args.gateway_cpus}`, upstream and wrk on `{args.load_cpus}`. Alone: "
        f"`{HEALTHY}/{MODEL}`. Past the open circuit: `openai/{MODEL}`, whose first target ({DEAD}, "
        "nothing listening) has an open circuit and is skipped.",
        "",
        "| conns | p50 alone ms | p50 past open circuit ms | added p50 ms | p99 alone → past ms "
        "| req/s alone → past | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, alone, past in rows:
        lines.append(
            f"| {c} | {alone.p50_us / 1000:.2f} | {past.p50_us / 1000:.2f} | "
            f"{(past.p50_us - alone.p50_us) / 1000:+.2f} | "
            f"{alone.p99_us / 1000:.2f} → {past.p99_us / 1000:.2f} | "
            f"{alone.rps:.0f} → {past.rps:.0f} | {alone.errors + past.errors} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.out / f"breaker-{started.strftime('%Y-%m-%dT%H%M%SZ')}.md"
    report.write_text("\n".join(lines) + "\n")
    print(report.read_text())


if __name__ == "__main__":
    main()
