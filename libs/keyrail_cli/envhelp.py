"""The KEYRAIL_* environment variables each command reads, for its `--help` epilog.

The variables and their defaults come from `keyrail_common.settings.load_settings` (plus the few
a command reads itself); tests/unit/cli/test_cli.py checks this table against it.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str
    meaning: str


_VARS = [
    EnvVar(
        "KEYRAIL_DATA_DIR",
        "./.keyrail",
        "all embedded state (NATS store, OpenBao raft + unseal key, chDB) and the embedded servers' "
        "logs (<data dir>/logs)",
    ),
    EnvVar("KEYRAIL_HOST", "127.0.0.1", "ingress listen address"),
    EnvVar("KEYRAIL_PORT", "8080", "ingress port (the OpenAI-compatible API, /admin/v1, /healthz)"),
    EnvVar(
        "KEYRAIL_NATS_URL",
        "nats://127.0.0.1:$KEYRAIL_NATS_PORT",
        "NATS to connect to; set it to use an external NATS instead of the embedded one",
    ),
    EnvVar("KEYRAIL_NATS_PORT", "4222", "port of the embedded NATS"),
    EnvVar(
        "KEYRAIL_VAULT_ADDR",
        "http://127.0.0.1:$KEYRAIL_VAULT_PORT",
        "Vault/OpenBao for credentials; set it to use an external one instead of the embedded OpenBao",
    ),
    EnvVar("KEYRAIL_VAULT_PORT", "8200", "port of the embedded OpenBao (its cluster port is the next one)"),
    EnvVar("KEYRAIL_VAULT_TOKEN", "unset", "Vault token"),
    EnvVar(
        "KEYRAIL_VAULT_TOKEN_FILE",
        "<data dir>/openbao/root-token",
        "file holding the Vault token, read when neither a token nor an AppRole is set",
    ),
    EnvVar(
        "KEYRAIL_VAULT_ROLE_ID", "unset", "AppRole role id (with KEYRAIL_VAULT_SECRET_ID) instead of a token"
    ),
    EnvVar("KEYRAIL_VAULT_SECRET_ID", "unset", "AppRole secret id"),
    EnvVar("KEYRAIL_VAULT_KV_MOUNT", "keyrail", "KV v2 mount holding the credentials"),
    EnvVar(
        "KEYRAIL_CLICKHOUSE_URL",
        "chdb://<data dir>/clickhouse",
        "activity store: embedded chDB, or http(s)://… for a ClickHouse server",
    ),
    EnvVar(
        "KEYRAIL_ACTIVITY_TTL_DAYS",
        "0 (forever)",
        "days activity rows are kept (the table's TTL, set at every audit start)",
    ),
    EnvVar("KEYRAIL_COSTS_TTL_DAYS", "0 (forever)", "days the daily cost rollups' rows are kept"),
    EnvVar(
        "KEYRAIL_BOOTSTRAP_TOKEN",
        "generated, printed once",
        "the owner's admin token, on first start only",
    ),
    EnvVar(
        "KEYRAIL_METRICS_BASE_PORT",
        "KEYRAIL_PORT + 1",
        "Prometheus ports of audit, router and worker: base, base+1, base+2 (the ingress serves /metrics)",
    ),
    EnvVar("KEYRAIL_METRICS_PORT", "0 (off)", "this service's Prometheus /metrics port"),
    EnvVar("KEYRAIL_METRICS_HOST", "127.0.0.1", "address the Prometheus endpoints listen on"),
    EnvVar("KEYRAIL_ACCESS_LOG", "1", "one JSON line per request; 0, false or no turns it off"),
    EnvVar(
        "KEYRAIL_REQUEST_TIMEOUT_S",
        "600",
        "a request's whole budget in seconds, streams included; attempts share what is left",
    ),
    EnvVar(
        "KEYRAIL_HEALTH_POOLS",
        "every available pool",
        "worker pools /healthz asks for, comma-separated",
    ),
    EnvVar(
        "KEYRAIL_PROVIDERS_OVERRIDE",
        "unset",
        "JSON file of per-provider registry overrides, e.g. base URLs",
    ),
    EnvVar("KEYRAIL_BREAKER_FAILURES", "5", "failures in a row that open a target's circuit breaker"),
    EnvVar("KEYRAIL_BREAKER_WINDOW_S", "60", "... within this many seconds of the first of them"),
    EnvVar("KEYRAIL_BREAKER_COOLDOWN_S", "30", "seconds an open circuit skips its target before one probe"),
    EnvVar(
        "KEYRAIL_ACTIVITY_BUFFER",
        "200000",
        "activity rows per kind a service holds while JetStream takes none; past it new rows are "
        "dropped, logged and counted (keyrail_activity_rows_dropped_total)",
    ),
    EnvVar(
        "KEYRAIL_ADMIN_TOKEN",
        "unset",
        "admin token (`keyrail sql` also takes --token; the admin commands read it only here)",
    ),
]
VARS = {var.name: var for var in _VARS}

_NATS = ["KEYRAIL_NATS_URL", "KEYRAIL_NATS_PORT"]
_VAULT = [
    "KEYRAIL_VAULT_ADDR",
    "KEYRAIL_VAULT_PORT",
    "KEYRAIL_VAULT_TOKEN",
    "KEYRAIL_VAULT_TOKEN_FILE",
    "KEYRAIL_VAULT_ROLE_ID",
    "KEYRAIL_VAULT_SECRET_ID",
    "KEYRAIL_VAULT_KV_MOUNT",
]
_METRICS = ["KEYRAIL_METRICS_PORT", "KEYRAIL_METRICS_HOST"]
_BREAKER = ["KEYRAIL_BREAKER_FAILURES", "KEYRAIL_BREAKER_WINDOW_S", "KEYRAIL_BREAKER_COOLDOWN_S"]
_CLICKHOUSE = ["KEYRAIL_CLICKHOUSE_URL", "KEYRAIL_ACTIVITY_TTL_DAYS", "KEYRAIL_COSTS_TTL_DAYS"]

# command → the variables it reads (directly or through the services it starts), with a
# command-specific default where it differs.
COMMANDS: dict[str, list[str | tuple[str, str]]] = {
    "up": [
        "KEYRAIL_DATA_DIR",
        "KEYRAIL_HOST",
        "KEYRAIL_PORT",
        *_NATS,
        *_VAULT,
        *_CLICKHOUSE,
        "KEYRAIL_BOOTSTRAP_TOKEN",
        "KEYRAIL_METRICS_BASE_PORT",
        "KEYRAIL_METRICS_HOST",
        "KEYRAIL_ACCESS_LOG",
        "KEYRAIL_REQUEST_TIMEOUT_S",
        ("KEYRAIL_HEALTH_POOLS", "the --providers value"),
        "KEYRAIL_PROVIDERS_OVERRIDE",
        *_BREAKER,
        "KEYRAIL_ACTIVITY_BUFFER",
    ],
    "ingress": [
        "KEYRAIL_DATA_DIR",
        "KEYRAIL_HOST",
        "KEYRAIL_PORT",
        *_NATS,
        *_VAULT,
        "KEYRAIL_BOOTSTRAP_TOKEN",
        "KEYRAIL_ACCESS_LOG",
        "KEYRAIL_REQUEST_TIMEOUT_S",
        "KEYRAIL_HEALTH_POOLS",
        "KEYRAIL_PROVIDERS_OVERRIDE",
        "KEYRAIL_ACTIVITY_BUFFER",
    ],
    "router": [
        *_NATS,
        *_METRICS,
        "KEYRAIL_ACCESS_LOG",
        "KEYRAIL_REQUEST_TIMEOUT_S",
        "KEYRAIL_PROVIDERS_OVERRIDE",
        *_BREAKER,
        "KEYRAIL_ACTIVITY_BUFFER",
    ],
    "worker": [
        "KEYRAIL_DATA_DIR",
        *_NATS,
        *_VAULT,
        *_METRICS,
        "KEYRAIL_ACCESS_LOG",
        "KEYRAIL_PROVIDERS_OVERRIDE",
        "KEYRAIL_ACTIVITY_BUFFER",
    ],
    "audit": ["KEYRAIL_DATA_DIR", *_NATS, *_CLICKHOUSE, *_METRICS],
    "sql": ["KEYRAIL_PORT", "KEYRAIL_ADMIN_TOKEN"],
    **{
        admin: ["KEYRAIL_PORT", "KEYRAIL_ADMIN_TOKEN"]
        for admin in (
            "users",
            "projects",
            "keys",
            "integrations",
            "custom-models",
            "catalog",
            "virtual-models",
            "configs",
            "events",
            "activity",
            "costs",
        )
    },
    "mock-upstream": [],
}

_NAME_WIDTH = 28
_WIDTH = 100


def epilog(command: str) -> str:
    entries = COMMANDS[command]
    if not entries:
        return "environment variables: none (configure it with the options above)"
    lines = ["environment variables (each with its default, then what it sets):"]
    for entry in entries:
        name, default = entry if isinstance(entry, tuple) else (entry, VARS[entry].default)
        lines.append(f"  {name:<{_NAME_WIDTH}}default: {default}")
        for line in textwrap.wrap(VARS[name].meaning, _WIDTH - _NAME_WIDTH - 2):
            lines.append(f"  {'':<{_NAME_WIDTH}}{line}")
    return "\n".join(lines)
