"""`keyrail activity` and `keyrail costs`: the query they send, relative times, the tables, and
-f printing each row once, oldest first, as new ones arrive. On the stack:
tests/integration/test_analytics_cli.py."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import parse_qs, urlsplit

from keyrail_cli.admin_commands import table
from keyrail_cli.analytics_commands import (
    COSTS,
    activity_path,
    cost_rows,
    follow,
    when,
)
from keyrail_cli.main import build_parser

NOW = 1_796_154_065.0  # 2026-12-01T19:41:05Z


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_relative_times_count_back_from_now_and_others_pass_through() -> None:
    assert when("7d", NOW) == str(int(NOW - 7 * 86400))
    assert when("90s", NOW) == str(int(NOW - 90))
    assert when("2026-12-01T00:00:00Z", NOW) == "2026-12-01T00:00:00Z"
    assert when(None, NOW) is None


def test_activity_sends_every_filter_given() -> None:
    args = _args(
        "activity",
        "--provider-slug",
        "openai-prod",
        "--status",
        "error",
        "--tag",
        "batch",
        "--since",
        "1h",
        "--limit",
        "5",
    )

    query = parse_qs(urlsplit(activity_path(args, NOW, cursor="abc")).query)

    assert query == {
        "provider_slug": ["openai-prod"],
        "status": ["error"],
        "tag": ["batch"],
        "since": [str(int(NOW - 3600))],
        "limit": ["5"],
        "cursor": ["abc"],
    }


def test_the_cost_table_has_a_column_per_token_kind() -> None:
    report = {
        "data": [
            {
                "key": "openai-prod",
                "requests": 4,
                "errors": 1,
                "error_rate": 0.25,
                "unpriced": 0,
                "tokens": {"prompt": 20, "completion": 8, "cached": 0, "cache_write": 0, "reasoning": 0},
                "cost_usd": "0.0000078",
            }
        ]
    }

    header, row = table(cost_rows(report), COSTS).split("\n")

    assert header.split() == list(COSTS)
    assert row.split() == ["openai-prod", "4", "1", "0.25", "0", "20", "8", "0", "0", "0", "0.0000078"]


def _row(request_id: str, ts: str) -> dict[str, Any]:
    return {"ts": ts, "request_id": request_id, "kind": "request", "attempt": 1, "status": "ok"}


class FakeClient:
    """Answers the first call with the newest rows, then each poll with its window's rows."""

    def __init__(self, answers: list[list[dict[str, Any]]]) -> None:
        self.answers = answers
        self.paths: list[str] = []

    def call(self, method: str, path: str) -> dict[str, Any]:
        self.paths.append(path)
        return {"data": self.answers.pop(0), "next_cursor": None}


def test_follow_prints_each_row_once_oldest_first() -> None:
    r1, r2, r3, r4 = (_row(f"req_{i}", f"2026-12-01T19:41:0{i}+00:00") for i in range(1, 5))
    client = FakeClient([[r2, r1], [r3, r2], [r4, r3]])  # newest first, as the API answers
    printed: list[str] = []

    follow(client, _args("activity", "-f"), printed.append, polls=2, clock=lambda: NOW, sleep=lambda s: None)  # type: ignore[arg-type]

    shown = [line.split()[1] for text in printed for line in text.split("\n") if line.startswith("2026")]
    assert shown == ["req_1", "req_2", "req_3", "req_4"]
    assert printed[0].startswith("ts ") and not printed[1].startswith("ts ")  # one header
    assert all("since=" in p for p in client.paths[1:])  # each poll looks back a window
