"""`keyrail up`: the embedded default — NATS, OpenBao and every service as separate processes.

One `keyrail up` per data dir (instance.py): a second one stops at once, naming the first.
Each service's output is relayed line by line with its name in front. The embedded servers'
output (banners, configuration dumps, routine election chatter) goes to `<data dir>/logs/`;
the console gets their warnings and errors once they are up, and, when one exits, the last lines
of its log. A process that dies is restarted with exponential backoff (and the log says so);
an embedded server that exits before it was ever ready stops the start. SIGINT/SIGTERM stop the
services first, then the infrastructure, each with a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

import httpx

from keyrail_cli.embedded_nats import nats_command
from keyrail_cli.embedded_openbao import openbao_command, prepare_openbao
from keyrail_cli.instance import (
    AlreadyRunning,
    DataDirLock,
    InstanceInfo,
    Listener,
    busy,
    ports_in_use_message,
)
from keyrail_common.settings import Settings, load_settings

_GRACE_S = 10.0
_BACKOFF_MAX_S = 30.0
_STABLE_AFTER_S = 30.0
_TAIL_LINES = 10
# nats-server ([WRN] [ERR] [FTL]) and OpenBao (hclog: [WARN] [ERROR]) lines worth a console line.
_ALERT = re.compile(rb"\[(?:WRN|ERR|FTL|WARN|ERROR)\]")


def say(message: str, stream: str = "stdout") -> None:
    out = sys.stderr if stream == "stderr" else sys.stdout
    out.write(f"{'keyrail':8} | {message}\n")
    out.flush()


def logs_dir(settings: Settings) -> Path:
    return settings.data_dir / "logs"


class ManagedProcess:
    """One child process, restarted when it dies.

    With `log_path` (the embedded servers) its output goes to that file; the console gets all of
    it only when `verbose`, otherwise only its warnings and errors while it runs settled (not
    while starting or stopping, when OpenBao's raft logs errors that mean nothing).
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        after_start: Callable[[], Awaitable[None]] | None = None,
        log_path: Path | None = None,
        verbose: bool = False,
        must_start: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.after_start = after_start
        self.log_path = log_path
        self.verbose = verbose
        self.must_start = must_start  # exiting before the first ready is fatal, not a restart
        self.process: asyncio.subprocess.Process | None = None
        self.started = asyncio.Event()
        self.ready_once = False  # became ready at least once since `keyrail up` began
        self.failed = False  # exited before it was ever ready: the supervisor gives up
        self._settled = False
        self._tail: deque[bytes] = deque(maxlen=_TAIL_LINES)
        self._prefix = f"{name:8} | ".encode()

    async def _relay(self, stream: asyncio.StreamReader) -> None:
        """Copy the child's output with the name in front of every line, a block at a time
        (services write their access logs in blocks; a readline per line would cost more)."""
        prefix = self._prefix
        newline_prefix = b"\n" + prefix
        out = sys.stdout.buffer
        partial = b""
        while block := await stream.read(65536):
            block = partial + block
            complete, _, partial = block.rpartition(b"\n")
            if complete or block.endswith(b"\n"):
                out.write(prefix + complete.replace(b"\n", newline_prefix) + b"\n")
                out.flush()
        if partial:
            out.write(prefix + partial + b"\n")
            out.flush()

    async def _relay_to_log(self, stream: asyncio.StreamReader, log_path: Path) -> None:
        out = sys.stdout.buffer
        partial = b""
        with log_path.open("ab") as log:
            while block := await stream.read(65536):
                log.write(block)
                log.flush()
                *lines, partial = (partial + block).split(b"\n")
                self._show(out, lines)
            if partial:
                log.write(b"\n")
                self._show(out, [partial])

    def _show(self, out: BinaryIO, lines: list[bytes]) -> None:
        shown = False
        for line in lines:
            self._tail.append(line)
            if self.verbose or (self._settled and _ALERT.search(line)):
                out.write(self._prefix + line + b"\n")
                shown = True
        if shown:
            out.flush()

    def _report(self, message: str) -> None:
        """Say `message`; for a server whose output is in a file, add the file's last lines."""
        if self.log_path is None or self.verbose:  # the console has seen every line already
            say(message)
            return
        if not self._tail:
            say(f"{message} (nothing in {self.log_path})")
            return
        say(f"{message}; last lines of {self.log_path}:")
        out = sys.stdout.buffer
        for line in self._tail:
            out.write(self._prefix + line + b"\n")
        out.flush()

    async def run(self, stopping: asyncio.Event) -> None:
        backoff = 1.0
        while not stopping.is_set():
            if self.log_path is not None:
                with self.log_path.open("a") as log:
                    log.write(f"--- keyrail up: starting {self.name} at {time.strftime('%F %T')}\n")
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to the supervisor, which stops children in order
            )
            began = time.monotonic()
            output = self.process.stdout
            assert output is not None
            relay = asyncio.create_task(
                self._relay(output) if self.log_path is None else self._relay_to_log(output, self.log_path)
            )
            exited = asyncio.create_task(self.process.wait())
            if self.after_start is not None:
                await self._wait_ready(exited, stopping)
            if not exited.done():
                self.ready_once = True
                self._settled = not stopping.is_set()
                self.started.set()
            code = await exited
            self._settled = False
            await relay
            if stopping.is_set():
                return
            if not self.ready_once and self.must_start:
                self._report(f"{self.name} exited with code {code} before it was ready")
                self.failed = True
                return
            if time.monotonic() - began > _STABLE_AFTER_S:
                backoff = 1.0
            self._report(f"{self.name} exited with code {code}; restarting in {backoff:.0f}s")
            try:
                await asyncio.wait_for(stopping.wait(), backoff)
                return
            except TimeoutError:
                backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _wait_ready(self, exited: asyncio.Task[int], stopping: asyncio.Event) -> None:
        """Run `after_start` until it is done, the process exits, or Keyrail is stopping
        (in the last two cases there is nothing left to wait for, and nothing to report)."""
        assert self.after_start is not None
        ready = asyncio.ensure_future(self.after_start())
        stop = asyncio.ensure_future(stopping.wait())
        await asyncio.wait([ready, exited, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not ready.done():
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ready
            return
        exc = ready.exception()
        if exc is not None and not exited.done() and not stopping.is_set():
            self._report(f"{self.name} failed to become ready: {exc}")

    async def stop(self) -> None:
        self._settled = False  # what a server says on its way out is not news
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _GRACE_S)
        except TimeoutError:
            say(f"{self.name} did not stop within {_GRACE_S:.0f}s; killing it")
            process.kill()
            await process.wait()


def _service_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "keyrail_cli.main", *args]


def _metrics_base(settings: Settings) -> int:
    return int(os.environ.get("KEYRAIL_METRICS_BASE_PORT") or settings.port + 1)


_SERVICES = [("audit", ["audit"]), ("router", ["router"]), ("worker", ["worker"]), ("ingress", ["ingress"])]


def _rotate(log_path: Path) -> Path:
    """Keep the previous run's log as `<name>.1`; each run starts its own file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists():
        log_path.replace(log_path.with_name(log_path.name + ".1"))
    return log_path


def build_processes(
    settings: Settings, providers: list[str], verbose: bool = False
) -> tuple[list[ManagedProcess], list[ManagedProcess]]:
    """(infrastructure, services): infrastructure starts first and stops last."""
    env = dict(os.environ)
    env["KEYRAIL_DATA_DIR"] = str(settings.data_dir)
    env.setdefault("KEYRAIL_HEALTH_POOLS", ",".join(providers))
    env["PYTHONUNBUFFERED"] = "1"
    logs = logs_dir(settings)
    infrastructure: list[ManagedProcess] = []
    if settings.embedded_nats:
        infrastructure.append(
            ManagedProcess(
                "nats",
                nats_command(settings),
                env,
                lambda: _wait_port(settings.nats_port),
                log_path=_rotate(logs / "nats.log"),
                verbose=verbose,
                must_start=True,
            )
        )
    if settings.embedded_vault:

        async def unseal() -> None:
            give_up = threading.Event()  # a thread cannot be cancelled; it checks this instead
            try:
                await asyncio.to_thread(prepare_openbao, settings, say, give_up)
            except SystemExit as exc:  # prepare_openbao's way of saying what is wrong
                raise RuntimeError(str(exc)) from None
            finally:
                give_up.set()

        infrastructure.append(
            ManagedProcess(
                "openbao",
                openbao_command(settings),
                env,
                unseal,
                log_path=_rotate(logs / "openbao.log"),
                verbose=verbose,
                must_start=True,
            )
        )
    metrics_base = _metrics_base(settings)
    services = []
    for offset, (name, args) in enumerate(_SERVICES):
        service_env = dict(env)
        if name != "ingress":  # the ingress serves /metrics on its own port
            service_env["KEYRAIL_METRICS_PORT"] = str(metrics_base + offset)
        if name == "worker":
            args = [*args, "--providers", ",".join(providers)]
        services.append(ManagedProcess(name, _service_argv(*args), service_env))
    return infrastructure, services


def listeners(settings: Settings) -> list[Listener]:
    """Every address `keyrail up` will listen on, with the variable that moves it."""
    wanted = [Listener(settings.host, settings.port, "ingress (KEYRAIL_PORT)")]
    metrics_base = _metrics_base(settings)
    for offset, (name, _) in enumerate(_SERVICES[:3]):
        wanted.append(
            Listener(
                settings.metrics_host,
                metrics_base + offset,
                f"{name} metrics (KEYRAIL_METRICS_BASE_PORT + {offset})",
            )
        )
    if settings.embedded_nats:
        wanted.append(Listener("127.0.0.1", settings.nats_port, "NATS (KEYRAIL_NATS_PORT)"))
    if settings.embedded_vault:
        wanted.append(Listener("127.0.0.1", settings.vault_port, "OpenBao (KEYRAIL_VAULT_PORT)"))
        wanted.append(
            Listener("127.0.0.1", settings.vault_port + 1, "OpenBao cluster (KEYRAIL_VAULT_PORT + 1)")
        )
    return wanted


def instance_info(settings: Settings) -> InstanceInfo:
    return InstanceInfo(
        pid=os.getpid(),
        ingress_url=f"http://{settings.host}:{settings.port}",
        nats=str(settings.nats_port) if settings.embedded_nats else f"{settings.nats_url} (external)",
        openbao=str(settings.vault_port) if settings.embedded_vault else f"{settings.vault_addr} (external)",
    )


async def _wait_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f}s")


async def _announce_when_healthy(settings: Settings, stopping: asyncio.Event, started: float) -> None:
    url = f"http://{settings.host}:{settings.port}/healthz"
    async with httpx.AsyncClient(timeout=2) as client:
        while not stopping.is_set():
            try:
                if (await client.get(url)).status_code == 200:
                    elapsed = time.monotonic() - started  # from the command's start, not the services'
                    say(f"Keyrail is ready on http://{settings.host}:{settings.port} ({elapsed:.1f}s)")
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)


async def supervise(
    settings: Settings, providers: list[str], started: float | None = None, verbose: bool = False
) -> int:
    """Run everything until SIGINT/SIGTERM; 0, or 1 when an embedded server could not start."""
    started = time.monotonic() if started is None else started
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    infrastructure, services = build_processes(settings, providers, verbose)
    say(f"data dir {settings.data_dir}")
    runners = []
    failed: ManagedProcess | None = None
    for process in infrastructure:
        where = "" if verbose or process.log_path is None else f" (log: {process.log_path})"
        say(f"starting {process.name}{where}")
        runners.append(asyncio.create_task(process.run(stopping)))
        waits = [asyncio.create_task(process.started.wait()), asyncio.create_task(stopping.wait())]
        await asyncio.wait([*waits, runners[-1]], return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        if process.failed:
            failed = process
            say(f"Keyrail cannot run without {process.name}; stopping")
            break
        if stopping.is_set():
            break
    healthy: asyncio.Task[None] | None = None
    if failed is None and not stopping.is_set():
        for process in services:
            say(f"starting {process.name}")
            runners.append(asyncio.create_task(process.run(stopping)))
        healthy = asyncio.create_task(_announce_when_healthy(settings, stopping, started))
        await stopping.wait()
    stopping.set()
    say("stopping")
    if healthy is not None:
        healthy.cancel()
    # Reverse start order: the ingress stops taking traffic and flushes its activity rows first,
    # the audit service stops last, after inserting what the others published on their way out.
    for process in reversed(services):
        await process.stop()
    for process in reversed(infrastructure):
        await process.stop()
    await asyncio.gather(*runners, return_exceptions=True)
    say("stopped")
    return 1 if failed else 0


def up(providers: list[str], started: float | None = None, verbose: bool = False) -> int:
    """`keyrail up`: claim the data dir, check the ports, then supervise; returns the exit code."""
    settings = load_settings()
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire(instance_info(settings))  # before anything else touches the data dir
    except AlreadyRunning as exc:
        say(str(exc), "stderr")
        return 1
    try:
        taken = busy(listeners(settings))
        if taken:
            say(ports_in_use_message(taken), "stderr")
            return 1
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
            return asyncio.run(supervise(settings, providers, started, verbose))
        return uvloop.run(supervise(settings, providers, started, verbose))
    finally:
        lock.release()
