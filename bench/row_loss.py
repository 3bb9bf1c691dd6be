"""Activity rows lost when a service is SIGKILLed under load: `python -m bench.row_loss`.

Starts `keyrail up` with the mock upstream and, in two phases, sends `--requests` chat
completions at `--concurrency` and SIGKILLs one process in the middle: first the ingress, then
the provider worker. `keyrail up` restarts it (the kill is what the OOM killer or a node loss
does: nothing flushes). A request that failed in transport (connection refused or reset while
the ingress was down) is retried as a new request; only answers count. After both phases the
audit service drains, and the request ids the client was answered for (`x-keyrail-request-id`)
are looked up in ClickHouse: each answer should have its request row, and each of its
`x-keyrail-attempts` attempts an attempt row. Prints how the kill was done and when, then
answered / found / lost, for successful answers and error answers apart.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.procs import descendants
from bench.run import BODY, say
from bench.stack import KeyrailUnderTest, wait_until_healthy
from tests.support.stack import MockUpstream

# A request stuck at a killed worker ends within this budget (504) instead of the 600 s default.
TIMEOUT_MS = 5000


@dataclass
class Kill:
    service: str
    pid: int
    at_s: float  # seconds into the phase
    answered_before: int
    new_pid: int = 0
    restarted_after_s: float = 0.0  # kill → the supervisor's new process
    healthy_after_s: float = 0.0  # kill → /healthz 200 again

    def describe(self) -> str:
        return (
            f"SIGKILL (os.kill, signal 9) of `keyrail {self.service}` pid {self.pid} at "
            f"{self.at_s:.2f} s into the phase, after {self.answered_before} answers; `keyrail up` "
            f"started pid {self.new_pid} {self.restarted_after_s:.2f} s after the kill, "
            f"/healthz 200 again {self.healthy_after_s:.2f} s after it"
        )


@dataclass
class Phase:
    service: str
    started_ms: int = 0
    ok: dict[str, int] = field(default_factory=dict)  # request id → attempts, 200 answers
    errors: dict[str, int] = field(default_factory=dict)  # request id → attempts, error answers
    statuses: dict[int, int] = field(default_factory=dict)
    transport_failures: int = 0
    unidentified: int = 0  # answers without x-keyrail-request-id
    kill: Kill | None = None


def _service_pid(keyrail: KeyrailUnderTest, service: str, not_pid: int = 0) -> int:
    pids = [
        pid for pid, name in descendants(keyrail.gateway.pid).items() if name == service and pid != not_pid
    ]
    return pids[0] if len(pids) == 1 else 0


def _kill_and_wait_for_restart(keyrail: KeyrailUnderTest, kill: Kill, killed_at: float) -> None:
    """Runs in a thread while the load goes on: the supervisor's restart, then health."""
    while not (new_pid := _service_pid(keyrail, kill.service, not_pid=kill.pid)):
        if time.monotonic() - killed_at > 60:
            raise SystemExit(f"`keyrail up` did not restart {kill.service} within 60 s")
        time.sleep(0.02)
    kill.new_pid, kill.restarted_after_s = new_pid, time.monotonic() - killed_at
    wait_until_healthy(f"{keyrail.url}/healthz", keyrail.gateway, keyrail.log.name, 60)
    kill.healthy_after_s = time.monotonic() - killed_at


async def _drive(keyrail: KeyrailUnderTest, key: str, phase: Phase, total: int, concurrency: int) -> None:
    body = {**BODY, "messages": [{"role": "user", "content": "one two three"}]}
    headers = {"Authorization": f"Bearer {key}", "x-keyrail-timeout-ms": str(TIMEOUT_MS)}
    started = time.monotonic()
    phase.started_ms = time.time_ns() // 1_000_000
    next_request = 0
    restart: asyncio.Future[None] | None = None

    def answered() -> int:
        return len(phase.ok) + len(phase.errors)

    def kill_now() -> None:
        nonlocal restart
        pid = _service_pid(keyrail, phase.service)
        if not pid:
            raise SystemExit(f"no single `keyrail {phase.service}` process to kill")
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        phase.kill = Kill(phase.service, pid, killed_at - started, answered())
        say(f"  {phase.service}: SIGKILL pid {pid} after {answered()} answers")
        restart = asyncio.get_running_loop().run_in_executor(
            None, _kill_and_wait_for_restart, keyrail, phase.kill, killed_at
        )

    async def one_slot(client: httpx.AsyncClient) -> None:
        nonlocal next_request
        while next_request < total:
            next_request += 1
            while True:  # until answered: a transport failure is retried as a new request
                try:
                    response = await client.post("/v1/chat/completions", json=body, timeout=30)
                    break
                except httpx.TransportError:
                    phase.transport_failures += 1
                    await asyncio.sleep(0.05)
            phase.statuses[response.status_code] = phase.statuses.get(response.status_code, 0) + 1
            request_id = response.headers.get("x-keyrail-request-id")
            if request_id is None:  # an internal error 500 names no request: nothing to look up
                phase.unidentified += 1
                continue
            attempts = int(response.headers.get("x-keyrail-attempts", "0"))
            (phase.ok if response.status_code == 200 else phase.errors)[request_id] = attempts
            if answered() == total // 2 and phase.kill is None:
                kill_now()

    async def progress() -> None:
        while True:
            await asyncio.sleep(2)
            say(
                f"  {phase.service}: {answered()}/{total} answered ({len(phase.errors)} with an error "
                f"status), {phase.transport_failures} transport failures retried"
            )

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=keyrail.url, headers=headers, limits=limits) as client:
        reporter = asyncio.create_task(progress())
        try:
            await asyncio.gather(*(one_slot(client) for _ in range(concurrency)))
            if restart is not None:
                await restart
        finally:
            reporter.cancel()


def _backlog(keyrail: KeyrailUnderTest) -> float:
    return keyrail.metric_sums().get("keyrail_audit_backlog_messages", -1.0)


def _wait_drained(keyrail: KeyrailUnderTest, timeout_s: float = 120) -> None:
    """Until the audit backlog is 0 and the row count has not moved for 3 s."""
    count_sql = {"sql": "SELECT count() FROM keyrail.activity"}
    deadline = time.monotonic() + timeout_s
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        rows = int(keyrail.admin("POST", "/admin/v1/sql", count_sql)["rows"][0][0])
        if rows != last:
            last, still_since = rows, time.monotonic()
        backlog = _backlog(keyrail)
        if backlog == 0 and time.monotonic() - still_since >= 3:
            say(f"audit drained: {rows} rows in keyrail.activity")
            return
        say(f"  waiting for the audit service: {rows} rows, backlog {backlog:.0f} messages")
        time.sleep(1)
    raise SystemExit(f"the audit service did not drain within {timeout_s:.0f} s")


def _stored(keyrail: KeyrailUnderTest, since_ms: int) -> tuple[set[str], set[tuple[str, int]]]:
    """Request ids with a request row and (request id, attempt) with an attempt row, since a time."""
    sql = (
        "SELECT kind, request_id, attempt FROM keyrail.activity FINAL "
        f"WHERE ts >= fromUnixTimestamp64Milli(toInt64({since_ms - 1000}))"
    )
    requests: set[str] = set()
    attempts: set[tuple[str, int]] = set()
    for kind, request_id, attempt in keyrail.admin("POST", "/admin/v1/sql", {"sql": sql})["rows"]:
        if kind == "request":
            requests.add(request_id)
        else:
            attempts.add((request_id, int(attempt)))
    return requests, attempts


def _loss_lines(
    label: str, answers: dict[str, int], stored: tuple[set[str], set[tuple[str, int]]]
) -> list[str]:
    requests, attempts = stored
    found = sum(1 for request_id in answers if request_id in requests)
    expected = sum(answers.values())
    attempts_found = sum(
        1
        for request_id, n in answers.items()
        for attempt in range(1, n + 1)
        if (request_id, attempt) in attempts
    )
    lines = [
        f"| {label} | request rows | {len(answers)} | {found} | {len(answers) - found} |",
        f"| {label} | attempt rows | {expected} | {attempts_found} | {expected - attempts_found} |",
    ]
    # Answered at the ingress's deadline while the attempt was still out (at a killed worker): the
    # answer names no attempt, so none is expected above; say whether any row exists for it.
    unknown = [request_id for request_id, n in answers.items() if n == 0]
    if unknown:
        with_attempt = {request_id for request_id, _ in attempts}
        rows = sum(1 for request_id in unknown if request_id in with_attempt)
        lines.append(
            f"| {label}, no `x-keyrail-attempts` (deadline passed first) | attempt rows "
            f"| {len(unknown)} requests, attempts unknown | {rows} | at least {len(unknown) - rows} |"
        )
    return lines


def _dropped_counters(keyrail: KeyrailUnderTest) -> str:
    """keyrail_activity_rows_dropped_total per service (ingress, router, worker): 0 unless a
    buffer filled up, which would be a loss of another kind than the kill's."""
    ports = {"ingress": keyrail.base, "router": keyrail.base + 2, "worker": keyrail.base + 3}
    parts = []
    for service, port in ports.items():
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("keyrail_activity_rows_dropped_total{")
        )
        parts.append(f"{service} {total:.0f}")
    return ", ".join(parts)


def report(phases: list[Phase], keyrail: KeyrailUnderTest, args: argparse.Namespace) -> str:
    lines = [
        f"`python -m bench.row_loss --requests {args.requests} --concurrency {args.concurrency}` "
        f"(`x-keyrail-timeout-ms: {TIMEOUT_MS}`; gateway on CPUs `{args.gateway_cpus}`)",
        "",
    ]
    for phase in phases:
        assert phase.kill is not None
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(phase.statuses.items()))
        lines += [
            f"## SIGKILL of the {phase.service}",
            "",
            phase.kill.describe() + ".",
            f"Answers by status: {statuses}; {phase.unidentified} without a request id; "
            f"{phase.transport_failures} transport failures (no answer, retried as new requests; "
            "not counted).",
            "",
            "| answers | rows | expected | found in ClickHouse | lost |",
            "|---|---|---|---|---|",
        ]
        stored = _stored(keyrail, phase.started_ms)
        lines += _loss_lines("200", phase.ok, stored)
        lines += _loss_lines("error status", phase.errors, stored)
        lines.append("")
    lines.append(f"keyrail_activity_rows_dropped_total at the end: {_dropped_counters(keyrail)}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.row_loss", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="answers per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--gateway-cpus", default="0-1", help="taskset CPU list of `keyrail up`")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) to this file")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="keyrail-bench-row-loss-"))
    upstream = MockUpstream(log_path=workdir / "mock-upstream.log").start()
    keyrail = KeyrailUnderTest(workdir, args.gateway_cpus, upstream.url)
    phases = [Phase("ingress"), Phase("worker")]
    try:
        say(f"starting keyrail up in {workdir}")
        keyrail.wait_ready()
        key = keyrail.provision()
        for phase in phases:
            say(f"phase {phase.service}: {args.requests} requests at concurrency {args.concurrency}")
            asyncio.run(_drive(keyrail, key, phase, args.requests, args.concurrency))
            assert phase.kill is not None
            say(f"  {phase.kill.describe()}")
        _wait_drained(keyrail)
        text = report(phases, keyrail, args)
    finally:
        keyrail.stop()
        upstream.stop()
    print(text, flush=True)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
