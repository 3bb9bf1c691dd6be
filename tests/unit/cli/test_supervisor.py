"""How `keyrail up` treats an embedded server's output and exits, with small real child processes
that print what nats-server and OpenBao print: the chatter goes to the log file, the console gets
the warnings and errors of a settled server, and an exit says so with the log's last lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from keyrail_cli.supervisor import ManagedProcess

SERVER = textwrap.dedent(
    """
    import signal, sys, time

    def out(line):
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()

    def on_term(*_):
        out("[ERROR] core: unlocking HA lock failed: cannot find peer")  # said on the way out
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    out("==> server configuration: banner")
    out("[ERROR] core: failed to unlock initialization lock: cannot find peer")  # said while starting
    time.sleep(1.0)
    out("[INF] routine line")
    out("[ERR] JetStream out of disk space")
    time.sleep(60)
    """
)


async def never() -> None:
    await asyncio.Event().wait()


def waiter(seconds: float) -> Callable[[], Awaitable[None]]:
    async def wait() -> None:
        await asyncio.sleep(seconds)

    return wait


def server(
    tmp_path: Path,
    script: str,
    after_start: Callable[[], Awaitable[None]] | None,
    verbose: bool = False,
    must_start: bool = True,
) -> ManagedProcess:
    return ManagedProcess(
        "fake",
        [sys.executable, "-c", script],
        dict(os.environ),
        after_start,
        log_path=tmp_path / "fake.log",
        verbose=verbose,
        must_start=must_start,
    )


@contextlib.asynccontextmanager
async def running(process: ManagedProcess) -> AsyncIterator[asyncio.Task[None]]:
    """`process.run()` in the background; on the way out, stopped as the supervisor stops it."""
    stopping = asyncio.Event()
    runner = asyncio.create_task(process.run(stopping))
    try:
        yield runner
    finally:
        stopping.set()
        await process.stop()
        await asyncio.wait_for(runner, 10)


async def test_settled_servers_alerts_reach_the_console_and_everything_reaches_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process = server(tmp_path, SERVER, waiter(0.5))
    async with running(process):
        await asyncio.wait_for(process.started.wait(), 10)
        await asyncio.sleep(1.5)

    console = capsys.readouterr().out
    assert console == "fake     | [ERR] JetStream out of disk space\n"
    log = (tmp_path / "fake.log").read_text()
    for line in (
        "==> server configuration: banner",
        "failed to unlock initialization lock",
        "[INF] routine line",
        "[ERR] JetStream out of disk space",
        "unlocking HA lock failed",
    ):
        assert line in log


async def test_verbose_shows_the_whole_output_on_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process = server(tmp_path, SERVER, waiter(0.2), verbose=True)
    async with running(process):
        await asyncio.sleep(1.5)
    console = capsys.readouterr().out
    assert "fake     | ==> server configuration: banner\n" in console
    assert "fake     | [INF] routine line\n" in console
    assert "fake     | [ERR] JetStream out of disk space\n" in console
    assert "banner" in (tmp_path / "fake.log").read_text()


FAILS_AT_ONCE = """
for i in range(20):
    print(f"[INF] line {i}")
print("[FTL] cannot listen")
raise SystemExit(1)
"""


async def test_exit_before_ready_is_fatal_and_shows_the_logs_last_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process = server(tmp_path, FAILS_AT_ONCE, never)
    async with running(process) as runner:
        await asyncio.wait_for(asyncio.shield(runner), 10)  # ends by itself: no restart loop

    assert process.failed
    assert not process.started.is_set()
    console = capsys.readouterr().out.splitlines()
    log = tmp_path / "fake.log"
    assert console[0] == f"keyrail  | fake exited with code 1 before it was ready; last lines of {log}:"
    assert console[-1] == "fake     | [FTL] cannot listen"
    assert "fake     | [INF] line 19" in console
    assert "fake     | [INF] line 0" not in console  # only the last lines
    assert len(console) == 1 + 10


DIES_LATER = """
import time
print("[INF] up", flush=True)
time.sleep(0.3)
print("panic: oops")
raise SystemExit(2)
"""


async def test_a_settled_server_that_dies_is_restarted_and_the_exit_shows_its_last_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process = server(tmp_path, DIES_LATER, None)
    log = tmp_path / "fake.log"
    async with running(process):
        for _ in range(200):  # the restart comes after a backoff of 1 s
            if log.exists() and log.read_text().count("--- keyrail up: starting fake") == 2:
                break
            await asyncio.sleep(0.05)
        assert log.read_text().count("--- keyrail up: starting fake") == 2, log.read_text()

    assert not process.failed
    console = capsys.readouterr().out.splitlines()
    assert console[:3] == [
        f"keyrail  | fake exited with code 2; restarting in 1s; last lines of {log}:",
        "fake     | [INF] up",
        "fake     | panic: oops",
    ]
