"""The data dir lock: held by a live process only (a SIGKILLed holder never leaves it stale), and
the refusal names the holder; the port check names what is taken."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyrail_cli.instance import (
    INFO_FILE,
    AlreadyRunning,
    DataDirLock,
    InstanceInfo,
    Listener,
    busy,
    ports_in_use_message,
)

HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from keyrail_cli.instance import DataDirLock, InstanceInfo

    DataDirLock(Path(sys.argv[1])).acquire(
        InstanceInfo(pid=os.getpid(), ingress_url="http://127.0.0.1:18080", nats="18085", openbao="18086")
    )
    print("locked", flush=True)
    time.sleep(120)
    """
)


def me(port: int = 8080) -> InstanceInfo:
    return InstanceInfo(pid=os.getpid(), ingress_url=f"http://127.0.0.1:{port}", nats="4222", openbao="8200")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "locked\n"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(10)


def test_a_second_claim_names_the_live_holder(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(AlreadyRunning) as refused:
        DataDirLock(tmp_path).acquire(me())
    message = str(refused.value)
    assert message.startswith(
        f"Keyrail is already running on this data dir (pid {holder.pid}; ingress http://127.0.0.1:18080, "
        "NATS 18085, OpenBao 18086). Stop it first, or use another KEYRAIL_DATA_DIR"
    ), message
    assert str(tmp_path) in message
    # The refused claim did not overwrite the holder's record.
    assert json.loads((tmp_path / INFO_FILE).read_text())["pid"] == holder.pid


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert (tmp_path / INFO_FILE).exists()  # its record is left behind...
    lock = DataDirLock(tmp_path)
    lock.acquire(me(9090))  # ...but not its lock
    try:
        assert json.loads((tmp_path / INFO_FILE).read_text())["pid"] == os.getpid()
        assert json.loads((tmp_path / INFO_FILE).read_text())["ingress_url"] == "http://127.0.0.1:9090"
    finally:
        lock.release()


def test_release_frees_the_data_dir_and_removes_the_record(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire(me())
    assert (tmp_path / INFO_FILE).exists()
    first.release()
    assert not (tmp_path / INFO_FILE).exists()
    second = DataDirLock(tmp_path)
    second.acquire(me())
    second.release()


def test_a_stale_record_of_a_dead_pid_is_not_presented_as_the_holder(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)
    lock.acquire(me())
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
        stale = {"pid": int(dead.stdout), "ingress_url": "http://x", "nats": "1", "openbao": "2"}
        (tmp_path / INFO_FILE).write_text(json.dumps(stale))
        with pytest.raises(AlreadyRunning) as refused:
            DataDirLock(tmp_path).acquire(me())
        assert refused.value.holder is None
        assert "its pid and ports are not recorded yet" in str(refused.value)
        assert f"pid {stale['pid']}" not in str(refused.value)
    finally:
        lock.release()


def test_busy_names_a_taken_port_and_not_a_free_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        taken_port = server.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free_port = probe.getsockname()[1]
        wanted = [
            Listener("127.0.0.1", taken_port, "NATS (KEYRAIL_NATS_PORT)"),
            Listener("127.0.0.1", free_port, "ingress (KEYRAIL_PORT)"),
            Listener("127.0.0.1", 70000, "not a port: left to the server to refuse"),
        ]
        taken = busy(wanted)
    assert taken == [wanted[0]]
    message = ports_in_use_message(taken)
    assert f"127.0.0.1:{taken_port}  NATS (KEYRAIL_NATS_PORT)" in message
    assert str(free_port) not in message
