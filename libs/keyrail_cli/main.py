"""The `keyrail` command: the embedded stack, each service alone, and operator tools."""

from __future__ import annotations

import argparse
import sys


def _providers(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def _all_pools() -> list[str]:
    from keyrail_common.registry import load_registry
    from keyrail_common.settings import load_settings

    return load_registry(load_settings().providers_override).pools()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keyrail", description="Keyrail BYOK LLM gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole gateway on the embedded default (NATS, OpenBao, chDB)")
    up.add_argument("--providers", type=_providers, default=None, help="worker pools to start (default: all)")
    commands.add_parser("ingress", help="run the HTTP ingress (data plane + admin API)")
    commands.add_parser("router", help="run a router")
    worker = commands.add_parser("worker", help="run a provider worker pool")
    worker.add_argument(
        "--providers", type=_providers, default=None, help="worker pools to serve (default: all)"
    )
    commands.add_parser("audit", help="run the audit service (activity log → ClickHouse)")
    sql = commands.add_parser("sql", help="read-only SQL over the activity log, through the admin API")
    sql.add_argument("query")
    sql.add_argument("--url", default=None, help="ingress URL (default http://127.0.0.1:$KEYRAIL_PORT)")
    sql.add_argument("--token", default=None, help="admin token (default $KEYRAIL_ADMIN_TOKEN)")
    from keyrail_cli import mock_upstream

    mock_upstream.add_arguments(commands.add_parser("mock-upstream", help="OpenAI-compatible local upstream"))
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    match args.command:
        case "up":
            from keyrail_cli.supervisor import up

            up(args.providers or _all_pools())
        case "ingress":
            from keyrail_ingress.app import main as ingress_main

            ingress_main()
        case "router":
            from keyrail_router.service import main as router_main

            router_main()
        case "worker":
            from keyrail_workers.service import main as worker_main

            worker_main(args.providers or _all_pools())
        case "audit":
            from keyrail_audit.service import main as audit_main

            audit_main()
        case "sql":
            from keyrail_cli.sql import run_sql

            sys.exit(run_sql(args.query, args.url, args.token))
        case "mock-upstream":
            from keyrail_cli import mock_upstream

            mock_upstream.run(args)


if __name__ == "__main__":
    main()
