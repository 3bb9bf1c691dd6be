"""`keyrail sql`: read-only SQL over the activity log via the admin API (chDB has one owner).

Prints the result as tab-separated columns. Every failure (no or malformed token, an ingress that
cannot be reached or is not Keyrail's, a rejected token, a SQL error) is one line on stderr and a
non-zero exit: 2 when the command itself is wrong, 1 when the gateway or the query failed.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import httpx

from keyrail_cli.admin_client import AdminClient, CommandError, base_url, check_token, one_line


def _post(base: str, query: str, token: str) -> httpx.Response:
    return AdminClient(base, token).send("POST", "/admin/v1/sql", {"sql": query})


def _payload(response: httpx.Response, base: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise CommandError(
            f"{base} answered HTTP {response.status_code} with a body that is not Keyrail's JSON; "
            "is that address a Keyrail ingress?"
        )
    if response.status_code == 200 and isinstance(payload.get("columns"), list):
        return payload
    error = payload.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    detail = one_line(message) if message else f"unexpected answer {one_line(response.text, 200)}"
    if response.status_code == 401:
        raise CommandError(f"the admin token was rejected (HTTP 401): {detail}")
    if response.status_code == 400 and isinstance(error, dict) and error.get("code") == "query_failed":
        raise CommandError(f"query failed: {detail}")
    raise CommandError(f"HTTP {response.status_code}: {detail}")


def query(query: str, url: str | None, token: str | None) -> dict[str, Any]:
    """The admin API's answer to `query` ({columns, rows, elapsed_ms}); raises CommandError."""
    presented = token if token is not None else os.environ.get("KEYRAIL_ADMIN_TOKEN", "")
    checked = check_token(presented, how="pass --token or set KEYRAIL_ADMIN_TOKEN")
    base = base_url(url)
    return _payload(_post(base, query, checked), base)


def _cell(value: Any) -> str:
    return " ".join(str(value).split("\t"))  # a tab inside a value would shift the columns


def run_sql(sql: str, url: str | None, token: str | None) -> int:
    try:
        payload = query(sql, url, token)
    except CommandError as exc:
        print(f"keyrail sql: {exc}", file=sys.stderr)
        return exc.exit_code
    rows = payload.get("rows") or []
    print("\t".join(_cell(c) for c in payload["columns"]))
    for row in rows:
        print("\t".join(_cell(v) for v in row))
    noun = "row" if len(rows) == 1 else "rows"
    print(f"({len(rows)} {noun}, {payload.get('elapsed_ms', 0)} ms)")
    return 0
