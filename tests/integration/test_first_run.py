"""A new user's first hour on the real stack: one `keyrail up` per data dir, an honest ready line,
a console without meaningless warnings, the embedded servers' chatter in log files, and the
warnings that do mean something still logged."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from keyrail_audit.consumer import ActivityConsumer
from keyrail_audit.store import ActivityStore
from keyrail_cli.mock_upstream import DEFAULT_REPLY
from keyrail_common import subjects
from keyrail_common.bus import close_bus, connect, ensure_streams
from keyrail_common.registry import load_registry
from tests.integration.conftest import Tenant, eventually
from tests.support.stack import KeyrailStack

pytestmark = pytest.mark.integration

# What a line that reports a problem looks like in each format on the console:
# Python logging ("<time> <service> WARNING <logger>: …"), uvicorn ("WARNING:  …"), Python warnings
# ("…: UserWarning: …"), tracebacks, nats-server ([WRN] [ERR] [FTL]), OpenBao/hclog ([WARN] [ERROR]),
# and the supervisor's own reports of processes that die, hang or fail to become ready.
PROBLEM = re.compile(
    r"\b(?:WARNING|ERROR|CRITICAL)\b|Traceback|\w+Warning\b|\[(?:WRN|ERR|FTL|WARN|ERROR)\]"
    r"|exited with code|restarting in|failed to become ready|did not stop|cannot run without"
)


def test_problem_pattern_matches_every_format_it_is_meant_to() -> None:
    """The quiet-console test below is only as good as this pattern."""
    problems = [
        "audit    | 2026-12-01 19:45:33,743 audit WARNING keyrail.audit: fetch failed: TimeoutError",
        "ingress  | 2026-12-01 19:45:34,595 ingress ERROR keyrail.ingress: boom",
        "ingress  | WARNING:  Invalid HTTP request received.",
        "ingress  | /x/fastapi/openapi/utils.py:231: UserWarning: Duplicate Operation ID list_keys",
        "worker   | Traceback (most recent call last):",
        "nats     | [5606] 2026/12/01 19:45:22.018266 [WRN] Maximum payloads over 8.00 MB",
        "nats     | [5606] 2026/12/01 19:45:22.018266 [FTL] Error listening on port",
        '[ERROR] core: failed to unlock initialization lock: error="cannot find peer"',
        "openbao  | 2026-12-01T19:45:29.761Z [WARN]  storage.raft: heartbeat timeout reached",
        "keyrail  | router exited with code -9; restarting in 1s",
    ]
    fine = [
        "router   | 2026-12-01 19:45:31,474 router INFO keyrail.router: router ready (config seq 0)",
        "keyrail  | Keyrail is ready on http://127.0.0.1:8080 (12.3s)",
        "keyrail  | starting nats (log: /tmp/data/logs/nats.log)",
    ]
    assert [p for p in problems if not PROBLEM.search(p)] == []
    assert [f for f in fine if PROBLEM.search(f)] == []


def test_second_up_on_a_running_data_dir_stops_at_once_and_the_first_keeps_serving(
    stack: KeyrailStack, tenant: Tenant, client: openai.OpenAI
) -> None:
    assert stack.process is not None
    nats_conf = (stack.data_dir / "nats.conf").read_bytes()

    began = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "keyrail_cli.main", "up"],
        env=stack.env(),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    elapsed = time.monotonic() - began

    output = (second.stdout + second.stderr).decode()
    assert second.returncode != 0, output
    assert elapsed < 2.0, f"took {elapsed:.2f}s: {output}"
    assert "Keyrail is already running on this data dir" in output
    # The running instance's supervisor pid and its ports, as an operator needs them.
    assert f"pid {stack.process.pid};" in output
    assert f"ingress {stack.url}," in output
    assert f"NATS {stack.base_port + 5}," in output
    assert f"OpenBao {stack.base_port + 6})" in output
    assert "KEYRAIL_DATA_DIR" in output
    for wrong in ("Keyrail is ready", "address already in use", "bolt", "restarting"):
        assert wrong not in output, output

    # Nothing of the first instance was touched, and it still serves.
    assert stack.process.poll() is None
    assert (stack.data_dir / "nats.conf").read_bytes() == nats_conf
    assert httpx.get(f"{stack.url}/healthz", timeout=5).status_code == 200
    completion = client.chat.completions.create(
        model=tenant.model, messages=[{"role": "user", "content": "still there?"}]
    )
    assert completion.choices[0].message.content == DEFAULT_REPLY


def test_fresh_start_idle_and_ctrl_c_say_nothing_alarming_and_the_ready_line_is_honest(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    fresh = KeyrailStack(data_dir, tmp_path / "keyrail-up.log")
    launched = fresh.launch()
    try:
        ready_line, seen = fresh.wait_for_output("Keyrail is ready on", timeout_s=180)
        fresh.wait_healthy(30)
        time.sleep(10)  # idle: no traffic at all
    finally:
        code = fresh.stop()
    console = fresh.log_path.read_text(errors="replace")
    assert code == 0, console

    # The ready line counts from the command's start: at least the wall time we measured from the
    # launch to seeing the line (minus the line's rounding and our polling), and not more.
    match = re.search(r"Keyrail is ready on http://127\.0\.0\.1:(\d+) \((\d+\.\d)s\)", ready_line)
    assert match, ready_line
    assert int(match[1]) == fresh.port
    reported, measured = float(match[2]), seen - launched
    assert measured - 0.5 <= reported <= measured + 0.1, (reported, measured)

    problems = [line for line in console.splitlines() if PROBLEM.search(line)]
    assert problems == [], "\n".join(problems)

    # Keyrail's own service lines still reach the console...
    for expected in (
        "router INFO keyrail.router: router ready",
        f"worker INFO keyrail.worker: worker ready for {','.join(load_registry().pools())}",
        f"ingress INFO keyrail.ingress: ingress ready on http://127.0.0.1:{fresh.port}",
        "audit INFO keyrail.audit: audit ready",
        f"starting nats (log: {data_dir / 'logs' / 'nats.log'})",
        f"starting openbao (log: {data_dir / 'logs' / 'openbao.log'})",
        "keyrail  | stopping",
        "keyrail  | stopped",
    ):
        assert expected in console, expected
    # ...while the embedded servers' banners and configuration dumps go to their log files.
    nats_log = (data_dir / "logs" / "nats.log").read_text()
    openbao_log = (data_dir / "logs" / "openbao.log").read_text()
    for banner, log in (
        ("Starting nats-server", nats_log),
        ("Server Exiting", nats_log),
        ("OpenBao server configuration", openbao_log),
        ("Environment Variables:", openbao_log),
        ("OpenBao shutdown triggered", openbao_log),
    ):
        assert banner in log, banner
        assert banner not in console, banner
    assert not (data_dir / "instance.json").exists()  # a clean stop leaves no record behind


def test_an_embedded_server_that_cannot_start_stops_keyrail_and_shows_why(tmp_path: Path) -> None:
    broken = KeyrailStack(tmp_path / "data", tmp_path / "keyrail-up.log")
    env = broken.env()
    env["KEYRAIL_NATS_PORT"] = "70000"  # nats-server refuses it
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "keyrail_cli.main", "up"],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    output = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 1, output
    assert time.monotonic() - began < 20, output  # no restart loop
    log = tmp_path / "data" / "logs" / "nats.log"
    assert f"nats exited with code 1 before it was ready; last lines of {log}:" in output
    assert re.search(r"^nats +\| .*\[FTL\].*70000", output, re.MULTILINE), output  # nats-server's own words
    assert "Keyrail cannot run without nats" in output
    assert "Keyrail is ready" not in output
    assert "starting openbao" not in output


# The bus and the audit consumer with a real nats-server: quiet when all is well, loud when not.


def _warnings(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= logging.WARNING]


async def test_bus_warns_when_the_server_goes_away_but_not_on_its_own_close(
    nats_server: tuple[str, subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    url, server = nats_server
    caplog.set_level(logging.INFO)
    nc = await connect(url, "first-run-test")
    await close_bus(nc)
    assert _warnings(caplog, "keyrail.bus") == []

    nc = await connect(url, "first-run-test")
    server.terminate()
    await eventually(lambda: "nats disconnected" in _warnings(caplog, "keyrail.bus"))
    await nc.close()
    assert "nats disconnected" in _warnings(caplog, "keyrail.bus")


async def test_audit_consumer_is_quiet_when_idle_and_warns_when_fetching_really_fails(
    nats_server: tuple[str, subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    url, _ = nats_server
    caplog.set_level(logging.INFO)
    nc = await connect(url, "first-run-test")
    js = nc.jetstream()
    await ensure_streams(js)
    stop = asyncio.Event()
    # A real store: with nothing published there is nothing to insert.
    store = ActivityStore(f"chdb://{tmp_path / 'ch'}")
    consumer = asyncio.create_task(ActivityConsumer(js, store).run(stop))
    try:
        await asyncio.sleep(2.0)  # about ten idle fetches time out
        assert _warnings(caplog, "keyrail.audit") == []

        await js.delete_consumer(subjects.ACTIVITY_STREAM, subjects.AUDIT_DURABLE)
        await eventually(lambda: bool(_warnings(caplog, "keyrail.audit")))
        warnings = _warnings(caplog, "keyrail.audit")
        assert warnings and warnings[0].startswith("fetch failed: "), warnings
        assert "TimeoutError" not in warnings[0]
    finally:
        stop.set()
        await asyncio.wait_for(consumer, 10)
        await store.close()
        await close_bus(nc)
