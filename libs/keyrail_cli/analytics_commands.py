"""`keyrail activity [filters] [-f]` and `keyrail costs --by slug --since 7d`: the activity log and
the cost report from the command line (tables, or the API's JSON with `--json`).

`-f` follows the log like `tail -f`: the newest rows first (oldest of them at the top), then every
row written since, polled once a second. Rows reach the log in the audit service's batches, a
little after their `ts`, so each poll looks back a window and prints only the rows not yet shown.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from keyrail_cli.admin_client import USAGE_ERROR, AdminClient, CommandError, base_url, check_token
from keyrail_cli.admin_commands import Output, add_common_options, render, table

ACTIVITY = (
    "ts",
    "request_id",
    "kind",
    "attempt",
    "provider_slug",
    "model",
    "status",
    "http_status",
    "error_class",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
)
COSTS = (
    "key",
    "requests",
    "errors",
    "error_rate",
    "unpriced",
    "prompt",
    "completion",
    "cached",
    "cache_write",
    "reasoning",
    "cost_usd",
)
FILTERS = ("request_id", "project_id", "provider_slug", "model", "status", "failure_class", "tag")
ANALYTICS_HELP = {
    "activity": "the activity log, newest first; -f follows it (admin API)",
    "costs": "requests, tokens, cost and error rate per slug, model, project, day or tag (admin API)",
}
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FOLLOW_POLL_S = 1.0
FOLLOW_LOOKBACK_S = 30.0  # how late a row may reach the log and still be shown by -f


def when(value: str | None, now: float) -> str | None:
    """`7d`, `12h`, `30m`, `90s` before now (as Unix seconds), or the API's own ISO 8601 / seconds."""
    if not value:
        return None
    relative = _RELATIVE.match(value.strip())
    if relative:
        return str(int(now - int(relative.group(1)) * _SECONDS[relative.group(2)]))
    return value


def activity_path(args: argparse.Namespace, now: float, cursor: str = "") -> str:
    params: dict[str, Any] = {f: getattr(args, f) for f in FILTERS if getattr(args, f)}
    params.update({k: v for k in ("since", "until") if (v := when(getattr(args, k), now))})
    if args.limit:
        params["limit"] = args.limit
    if cursor:
        params["cursor"] = cursor
    return f"/admin/v1/activity?{urlencode(params)}"


def _activity(c: AdminClient, a: argparse.Namespace) -> Output:
    return Output(c.call("GET", activity_path(a, time.time())), ACTIVITY)


def _costs(c: AdminClient, a: argparse.Namespace) -> Output:
    now = time.time()
    params = {"group_by": a.by, **{k: v for k in ("since", "until") if (v := when(getattr(a, k), now))}}
    report = c.call("GET", f"/admin/v1/costs?{urlencode(params)}")
    return Output(report, COSTS)


def cost_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's groups with the tokens as columns of their own."""
    return [{**{k: v for k, v in g.items() if k != "tokens"}, **g["tokens"]} for g in report["data"]]


def _key(row: dict[str, Any]) -> tuple[str, str, str, int]:
    return (row["ts"], row["request_id"], row["kind"], row["attempt"])


def follow(
    client: AdminClient,
    args: argparse.Namespace,
    emit: Callable[[str], None],
    polls: int | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Print the newest rows, then the new ones as they arrive (`polls`: stop after that many)."""
    seen: set[tuple[str, str, str, int]] = set()
    first = client.call("GET", activity_path(args, clock()))["data"]
    header = True
    newest = clock()
    done = 0
    batch = list(reversed(first))
    while True:
        fresh = [r for r in batch if _key(r) not in seen]
        if fresh:
            seen.update(_key(r) for r in fresh)
            lines = table(fresh, ACTIVITY).split("\n")
            emit("\n".join(lines if header else lines[1:]))
            header = False
        if polls is not None and done >= polls:
            return
        sleep(FOLLOW_POLL_S)
        done += 1
        window = argparse.Namespace(**{**vars(args), "since": str(newest - FOLLOW_LOOKBACK_S), "limit": 1000})
        newest = clock()
        batch, cursor = [], ""
        while True:  # every page of the window, then oldest first
            page = client.call("GET", activity_path(window, newest, cursor))
            batch += page["data"]
            cursor = page["next_cursor"] or ""
            if not cursor:
                break
        batch.reverse()


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    activity = command("activity", ANALYTICS_HELP["activity"])
    add_common_options(activity)
    for name in FILTERS:
        activity.add_argument(f"--{name.replace('_', '-')}", dest=name)
    activity.add_argument("--since", help="7d, 12h, 30m, ISO 8601 or Unix seconds")
    activity.add_argument("--until", help="like --since")
    activity.add_argument("--limit", type=int, default=None, help="rows (default 100, at most 1000)")
    activity.add_argument("-f", "--follow", action="store_true", help="keep printing new rows, like tail -f")
    activity.set_defaults(run=_activity)
    costs = command("costs", ANALYTICS_HELP["costs"])
    add_common_options(costs)
    costs.add_argument("--by", required=True, choices=("slug", "model", "project", "day", "tag"))
    costs.add_argument("--since", help="7d, ISO 8601 or Unix seconds (whole UTC days; default 30 days)")
    costs.add_argument("--until", help="like --since: the first day not counted")
    costs.set_defaults(run=_costs)


def run(args: argparse.Namespace) -> int:
    """Run `activity` or `costs`; every failure is one line on stderr, Ctrl-C ends -f quietly."""
    try:
        client = AdminClient(base_url(args.url), check_token(os.environ.get("KEYRAIL_ADMIN_TOKEN", "")))
        if getattr(args, "follow", False):
            if args.json:
                raise CommandError("--follow prints a table; leave out --json", USAGE_ERROR)
            follow(client, args, lambda text: print(text, flush=True))
            return 0
        output = args.run(client, args)
    except CommandError as exc:
        print(f"keyrail {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    if args.command == "costs" and not args.json:
        output = Output({"data": cost_rows(output.payload)}, COSTS)
    print(render(output, args.json))
    return 0
