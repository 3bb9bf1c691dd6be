"""`keyrail up`: the embedded default — NATS, OpenBao and every service as separate processes.

Each process's output is relayed line by line with its name in front. A process that dies is
restarted with exponential backoff (and the log says so); SIGINT/SIGTERM stop the services
first, then the infrastructure, each with a grace period.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable

import httpx

from keyrail_cli.embedded_nats import nats_command
from keyrail_cli.embedded_openbao import openbao_command, prepare_openbao
from keyrail_common.settings import Settings, load_settings

_GRACE_S = 10.0
_BACKOFF_MAX_S = 30.0
_STABLE_AFTER_S = 30.0


def say(message: str) -> None:
    sys.stdout.write(f"{'keyrail':8} | {message}\n")
    sys.stdout.flush()


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        after_start: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.after_start = after_start
        self.process: asyncio.subprocess.Process | None = None
        self.started = asyncio.Event()

    async def _relay(self, stream: asyncio.StreamReader) -> None:
        """Copy the child's output with the name in front of every line, a block at a time
        (services write their access logs in blocks; a readline per line would cost more)."""
        prefix = f"{self.name:8} | ".encode()
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

    async def run(self, stopping: asyncio.Event) -> None:
        backoff = 1.0
        while not stopping.is_set():
            self.process = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to the supervisor, which stops children in order
            )
            began = time.monotonic()
            relay = asyncio.create_task(self._relay(self.process.stdout))  # type: ignore[arg-type]
            if self.after_start is not None:
                try:
                    await self.after_start()
                except Exception as exc:
                    say(f"{self.name} failed to become ready: {exc}")
            self.started.set()
            code = await self.process.wait()
            await relay
            if stopping.is_set():
                return
            if time.monotonic() - began > _STABLE_AFTER_S:
                backoff = 1.0
            say(f"{self.name} exited with code {code}; restarting in {backoff:.0f}s")
            try:
                await asyncio.wait_for(stopping.wait(), backoff)
                return
            except TimeoutError:
                backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def stop(self) -> None:
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


def build_processes(
    settings: Settings, providers: list[str]
) -> tuple[list[ManagedProcess], list[ManagedProcess]]:
    """(infrastructure, services): infrastructure starts first and stops last."""
    env = dict(os.environ)
    env["KEYRAIL_DATA_DIR"] = str(settings.data_dir)
    env.setdefault("KEYRAIL_HEALTH_POOLS", ",".join(providers))
    env["PYTHONUNBUFFERED"] = "1"
    infrastructure: list[ManagedProcess] = []
    if settings.embedded_nats:
        infrastructure.append(
            ManagedProcess("nats", nats_command(settings), env, lambda: _wait_port(settings.nats_port))
        )
    if settings.embedded_vault:

        async def unseal() -> None:
            await asyncio.to_thread(prepare_openbao, settings, say)

        infrastructure.append(ManagedProcess("openbao", openbao_command(settings), env, unseal))
    metrics_base = int(env.get("KEYRAIL_METRICS_BASE_PORT") or settings.port + 1)
    services = []
    for offset, (name, args) in enumerate(
        [
            ("audit", ["audit"]),
            ("router", ["router"]),
            ("worker", ["worker", "--providers", ",".join(providers)]),
            ("ingress", ["ingress"]),
        ]
    ):
        service_env = dict(env)
        if name != "ingress":  # the ingress serves /metrics on its own port
            service_env["KEYRAIL_METRICS_PORT"] = str(metrics_base + offset)
        services.append(ManagedProcess(name, _service_argv(*args), service_env))
    return infrastructure, services


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


async def _announce_when_healthy(settings: Settings, stopping: asyncio.Event) -> None:
    url = f"http://{settings.host}:{settings.port}/healthz"
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=2) as client:
        while not stopping.is_set():
            try:
                if (await client.get(url)).status_code == 200:
                    elapsed = time.monotonic() - started
                    say(f"Keyrail is ready on http://{settings.host}:{settings.port} ({elapsed:.1f}s)")
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)


async def supervise(settings: Settings, providers: list[str]) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    infrastructure, services = build_processes(settings, providers)
    say(f"data dir {settings.data_dir}")
    runners = []
    for process in infrastructure:
        say(f"starting {process.name}")
        runners.append(asyncio.create_task(process.run(stopping)))
        await asyncio.wait(
            [asyncio.create_task(process.started.wait()), runners[-1]], return_when="FIRST_COMPLETED"
        )
    for process in services:
        say(f"starting {process.name}")
        runners.append(asyncio.create_task(process.run(stopping)))
    healthy = asyncio.create_task(_announce_when_healthy(settings, stopping))
    await stopping.wait()
    say("stopping")
    healthy.cancel()
    # Reverse start order: the ingress stops taking traffic and flushes its activity rows first,
    # the audit service stops last, after inserting what the others published on their way out.
    for process in reversed(services):
        await process.stop()
    for process in reversed(infrastructure):
        await process.stop()
    await asyncio.gather(*runners, return_exceptions=True)
    say("stopped")


def up(providers: list[str]) -> None:
    settings = load_settings()
    try:
        import uvloop

        uvloop.run(supervise(settings, providers))
    except ImportError:  # pragma: no cover
        asyncio.run(supervise(settings, providers))
