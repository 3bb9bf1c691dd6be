"""One `keyrail up` per data dir, and a clear word when its ports are taken.

The lock is `fcntl.flock` on `<data dir>/keyrail.lock`, held by the supervisor for its whole life:
the kernel drops it when the process ends however it ends (SIGKILL included), so a crash never
leaves a stale lock. Beside it, `<data dir>/instance.json` says who holds it (pid, ports) for the
message a second `keyrail up` prints. Light imports only: a refused start must be quick.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LOCK_FILE = "keyrail.lock"
INFO_FILE = "instance.json"


@dataclass(frozen=True)
class InstanceInfo:
    pid: int
    ingress_url: str
    nats: str  # the embedded server's port, or the external URL
    openbao: str  # likewise

    def describe(self) -> str:
        return f"pid {self.pid}; ingress {self.ingress_url}, NATS {self.nats}, OpenBao {self.openbao}"


class AlreadyRunning(Exception):
    """Another live process holds the data dir's lock."""

    def __init__(self, data_dir: Path, holder: InstanceInfo | None) -> None:
        self.data_dir = data_dir
        self.holder = holder
        who = holder.describe() if holder else "its pid and ports are not recorded yet"
        super().__init__(
            f"Keyrail is already running on this data dir ({who}). "
            f"Stop it first, or use another KEYRAIL_DATA_DIR (this one is {data_dir})."
        )


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._fd: int | None = None

    @property
    def info_path(self) -> Path:
        return self.data_dir / INFO_FILE

    def acquire(self, me: InstanceInfo) -> None:
        """Take the lock (never waits) and record `me`; raises AlreadyRunning if it is held."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise AlreadyRunning(self.data_dir, self._read_holder()) from None
        self._fd = fd
        temporary = self.info_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(me)))
        temporary.replace(self.info_path)  # whole or absent, never half-written

    def release(self) -> None:
        if self._fd is None:
            return
        self.info_path.unlink(missing_ok=True)
        os.close(self._fd)  # closing the descriptor drops the lock
        self._fd = None

    def _read_holder(self, wait_s: float = 1.0) -> InstanceInfo | None:
        """The holder's record; it may be a moment behind the lock, or stale from a crash."""
        deadline = time.monotonic() + wait_s
        while True:
            holder = _read_info(self.info_path)
            if holder is not None and _alive(holder.pid):
                return holder
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)


def _read_info(path: Path) -> InstanceInfo | None:
    try:
        raw = json.loads(path.read_text())
        return InstanceInfo(
            pid=int(raw["pid"]), ingress_url=raw["ingress_url"], nats=raw["nats"], openbao=raw["openbao"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    what: str  # e.g. "ingress (KEYRAIL_PORT)"


def busy(listeners: list[Listener]) -> list[Listener]:
    """The listeners whose address is taken right now (as the servers bind: with SO_REUSEADDR)."""
    taken = []
    for listener in listeners:
        try:
            family = socket.getaddrinfo(listener.host, listener.port, type=socket.SOCK_STREAM)[0][0]
        except (OSError, OverflowError):
            continue  # a bad host name is the server's own error to report
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((listener.host, listener.port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    taken.append(listener)
            except OverflowError:
                pass  # not a port at all: the server says so in its own words
    return taken


def ports_in_use_message(taken: list[Listener]) -> str:
    lines = [f"  {t.host}:{t.port}  {t.what}" for t in taken]
    return (
        "Keyrail cannot start: these ports are already in use (another Keyrail on another data dir, "
        "or another program):\n" + "\n".join(lines) + "\nStop what listens there, or choose other "
        "ports with the environment variables named above."
    )
