"""The `keyrail` command: the embedded stack, each service alone, and operator tools."""

from __future__ import annotations

import argparse
import os
import sys
import time
from importlib import metadata


def _process_started() -> float:
    """`time.monotonic()` at this process's start, the interpreter's own start-up included
    (Linux: the process age from /proc, as `ps -o etime` computes it; elsewhere: now)."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
            age = float(uptime.read().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return now
    return now - min(max(age, 0.0), 60.0)


STARTED = _process_started()

_POOLS = "{accepted pools}"  # filled in only when help is shown: listing them imports the worker


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text and _POOLS in text:
            from keyrail_cli.pools import accepted_pools

            text = text.replace(_POOLS, ", ".join(accepted_pools()))
        return text


def _providers(value: str) -> list[str]:
    from keyrail_cli.pools import accepted_pools

    pools = [p.strip() for p in value.split(",") if p.strip()]
    accepted = accepted_pools()
    unknown = [p for p in pools if p not in accepted]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown worker pool {', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)}"
        )
    if not pools:
        raise argparse.ArgumentTypeError(f"name at least one worker pool; accepted: {', '.join(accepted)}")
    return pools


def _version() -> str:
    try:
        return metadata.version("keyrail")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from keyrail_cli.envhelp import epilog

    parser = argparse.ArgumentParser(
        prog="keyrail",
        description="Keyrail BYOK LLM gateway",
        epilog="`keyrail COMMAND --help` lists a command's options and the environment variables it reads.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"keyrail {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help, description=help, epilog=epilog(name), formatter_class=_HelpFormatter
        )

    providers_help = f"comma-separated worker pools to start (accepted: {_POOLS}; default: all of them)"
    up = command("up", "run the whole gateway on the embedded default (NATS, OpenBao, chDB)")
    up.add_argument("--providers", type=_providers, default=None, metavar="POOLS", help=providers_help)
    up.add_argument(
        "--verbose",
        action="store_true",
        help="also show the embedded NATS and OpenBao output on the console "
        "(by default it goes to <data dir>/logs/nats.log and openbao.log)",
    )
    command("ingress", "run the HTTP ingress (data plane + admin API)")
    command("router", "run a router")
    worker = command("worker", "run a provider worker pool")
    worker.add_argument(
        "--providers",
        type=_providers,
        default=None,
        metavar="POOLS",
        help=f"comma-separated worker pools to serve (accepted: {_POOLS}; default: all of them)",
    )
    command("audit", "run the audit service (activity log → ClickHouse)")
    sql = command("sql", "read-only SQL over the activity log, through the admin API")
    sql.add_argument("query")
    sql.add_argument("--url", default=None, help="ingress URL (default http://127.0.0.1:$KEYRAIL_PORT)")
    sql.add_argument("--token", default=None, help="admin token (default $KEYRAIL_ADMIN_TOKEN)")
    from keyrail_cli import admin_commands, analytics_commands, mock_upstream, model_commands

    admin_commands.add_commands(command)
    model_commands.add_commands(command)
    analytics_commands.add_commands(command)
    mock_upstream.add_arguments(command("mock-upstream", "OpenAI-compatible local upstream"))
    return parser


def admin_command_names() -> tuple[str, ...]:
    from keyrail_cli.admin_commands import ADMIN_COMMANDS

    return ADMIN_COMMANDS


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    match args.command:
        case "up":
            from keyrail_cli.pools import accepted_pools
            from keyrail_cli.supervisor import up

            sys.exit(up(args.providers or list(accepted_pools()), started=STARTED, verbose=args.verbose))
        case "ingress":
            from keyrail_ingress.app import main as ingress_main

            ingress_main()
        case "router":
            from keyrail_router.service import main as router_main

            router_main()
        case "worker":
            from keyrail_cli.pools import accepted_pools
            from keyrail_workers.service import main as worker_main

            worker_main(args.providers or list(accepted_pools()))
        case "audit":
            from keyrail_audit.service import main as audit_main

            audit_main()
        case "sql":
            from keyrail_cli.sql import run_sql

            sys.exit(run_sql(args.query, args.url, args.token))
        case command if command in admin_command_names():
            from keyrail_cli.admin_commands import run

            sys.exit(run(args))
        case "activity" | "costs":
            from keyrail_cli.analytics_commands import run as run_analytics

            sys.exit(run_analytics(args))
        case "mock-upstream":
            from keyrail_cli import mock_upstream

            mock_upstream.run(args)


if __name__ == "__main__":
    main()
