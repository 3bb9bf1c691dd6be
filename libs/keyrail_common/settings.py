"""Settings read from the environment once, at a service's composition root.

Nothing here is module-global state: each service builds one `Settings` and passes it down.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True):
    data_dir: Path
    port: int
    host: str
    nats_url: str
    nats_port: int
    vault_addr: str
    vault_port: int
    vault_token: str
    vault_token_file: str
    vault_role_id: str
    vault_secret_id: str
    vault_kv_mount: str
    clickhouse_url: str
    activity_ttl_days: int  # activity rows are deleted this many days after their request; 0: kept
    costs_ttl_days: int  # the daily cost rollups' rows, the same way
    bootstrap_token: str
    health_pools: tuple[str, ...]
    metrics_port: int
    metrics_host: str
    access_log: bool
    request_timeout_s: float
    providers_override: str  # JSON file of per-provider registry overrides (e.g. base URLs)
    breaker_failures: int  # counting failures in a row that open a target's circuit
    breaker_window_s: float  # ... within this many seconds of the first
    breaker_cooldown_s: float  # an open circuit's pause before one probe goes through
    activity_buffer_rows: int  # activity rows per subject a service holds while JetStream takes none

    @property
    def embedded_nats(self) -> bool:
        return not os.environ.get("KEYRAIL_NATS_URL")

    @property
    def embedded_vault(self) -> bool:
        return not os.environ.get("KEYRAIL_VAULT_ADDR")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _days(name: str) -> int:
    raw = _env(name, "0")
    if not raw.isdigit():
        raise ValueError(f"{name}={raw!r}: give a whole number of days, or 0 to keep rows forever")
    return int(raw)


def load_settings() -> Settings:
    data_dir = Path(_env("KEYRAIL_DATA_DIR", "./.keyrail")).resolve()
    nats_port = int(_env("KEYRAIL_NATS_PORT", "4222"))
    vault_port = int(_env("KEYRAIL_VAULT_PORT", "8200"))
    return Settings(
        data_dir=data_dir,
        port=int(_env("KEYRAIL_PORT", "8080")),
        host=_env("KEYRAIL_HOST", "127.0.0.1"),
        nats_url=_env("KEYRAIL_NATS_URL", f"nats://127.0.0.1:{nats_port}"),
        nats_port=nats_port,
        vault_addr=_env("KEYRAIL_VAULT_ADDR", f"http://127.0.0.1:{vault_port}"),
        vault_port=vault_port,
        vault_token=_env("KEYRAIL_VAULT_TOKEN", ""),
        vault_token_file=_env("KEYRAIL_VAULT_TOKEN_FILE", str(data_dir / "openbao" / "root-token")),
        vault_role_id=_env("KEYRAIL_VAULT_ROLE_ID", ""),
        vault_secret_id=_env("KEYRAIL_VAULT_SECRET_ID", ""),
        vault_kv_mount=_env("KEYRAIL_VAULT_KV_MOUNT", "keyrail"),
        clickhouse_url=_env("KEYRAIL_CLICKHOUSE_URL", f"chdb://{data_dir / 'clickhouse'}"),
        activity_ttl_days=_days("KEYRAIL_ACTIVITY_TTL_DAYS"),
        costs_ttl_days=_days("KEYRAIL_COSTS_TTL_DAYS"),
        bootstrap_token=_env("KEYRAIL_BOOTSTRAP_TOKEN", ""),
        # Empty: every worker pool the provider registry has an adapter for.
        health_pools=tuple(p for p in _env("KEYRAIL_HEALTH_POOLS", "").split(",") if p),
        metrics_port=int(_env("KEYRAIL_METRICS_PORT", "0")),
        metrics_host=_env("KEYRAIL_METRICS_HOST", "127.0.0.1"),
        access_log=_env("KEYRAIL_ACCESS_LOG", "1") not in ("0", "false", "no"),
        # The whole request, streams included (the OpenAI SDK's own default): attempts without a
        # timeout of their own share what is left of it.
        request_timeout_s=float(_env("KEYRAIL_REQUEST_TIMEOUT_S", "600")),
        providers_override=_env("KEYRAIL_PROVIDERS_OVERRIDE", ""),
        breaker_failures=int(_env("KEYRAIL_BREAKER_FAILURES", "5")),
        breaker_window_s=float(_env("KEYRAIL_BREAKER_WINDOW_S", "60")),
        breaker_cooldown_s=float(_env("KEYRAIL_BREAKER_COOLDOWN_S", "30")),
        activity_buffer_rows=int(_env("KEYRAIL_ACTIVITY_BUFFER", "200000")),
    )
