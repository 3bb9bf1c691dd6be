"""`keyrail sql`: read-only SQL over the activity log via the admin API (chDB has one owner).

Prints the result as tab-separated columns. Every failure (no or malformed token, an ingress that
cannot be reached or is not Keyrail's, a rejected token, a SQL error) is one line on stderr and a
non-zero exit: 2 when the command itself is wrong, 1 when the gateway or the query failed.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from typing import Any

import httpx

USAGE_ERROR = 2
FAILED = 1
TIMEOUT_S = 60.0


class SqlCommandError(Exception):
    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _check_token(token: str) -> str:
    token = token.strip()
    if not token:
        raise SqlCommandError(
            "no admin token: pass --token or set KEYRAIL_ADMIN_TOKEN to the owner token that "
            "`keyrail up` printed on first start",
            USAGE_ERROR,
        )
    for position, char in enumerate(token, start=1):
        if not "!" <= char <= "~":  # printable ASCII without space: what an HTTP header can carry
            name = unicodedata.name(char, "a control character")
            raise SqlCommandError(
                f"the admin token has {name} (U+{ord(char):04X}) at character {position}, which an "
                "HTTP header cannot carry; paste the whole kra- token that `keyrail up` printed",
                USAGE_ERROR,
            )
    return token


def _base_url(url: str | None) -> str:
    base = (url or f"http://127.0.0.1:{os.environ.get('KEYRAIL_PORT') or '8080'}").rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise SqlCommandError(f"--url must start with http:// or https:// (got {base!r})", USAGE_ERROR)
    return base


def _post(base: str, query: str, token: str) -> httpx.Response:
    where = f"the Keyrail ingress at {base}"
    try:
        return httpx.post(
            f"{base}/admin/v1/sql",
            json={"sql": query},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
        )
    except httpx.ConnectError as exc:
        raise SqlCommandError(
            f"cannot reach {where} ({_one_line(str(exc)) or 'connection failed'}); is `keyrail up` "
            "running? Set KEYRAIL_PORT or pass --url if it listens elsewhere"
        ) from exc
    except httpx.TimeoutException as exc:
        raise SqlCommandError(f"no answer from {where} within {TIMEOUT_S:.0f}s") from exc
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise SqlCommandError(f"cannot query {where}: {_one_line(str(exc)) or type(exc).__name__}") from exc


def _payload(response: httpx.Response, base: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise SqlCommandError(
            f"{base} answered HTTP {response.status_code} with a body that is not Keyrail's JSON; "
            "is that address a Keyrail ingress?"
        )
    if response.status_code == 200 and isinstance(payload.get("columns"), list):
        return payload
    error = payload.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    detail = _one_line(message) if message else f"unexpected answer {_one_line(response.text, 200)}"
    if response.status_code == 401:
        raise SqlCommandError(f"the admin token was rejected (HTTP 401): {detail}")
    if response.status_code == 400 and isinstance(error, dict) and error.get("code") == "query_failed":
        raise SqlCommandError(f"query failed: {detail}")
    raise SqlCommandError(f"HTTP {response.status_code}: {detail}")


def query(query: str, url: str | None, token: str | None) -> dict[str, Any]:
    """The admin API's answer to `query` ({columns, rows, elapsed_ms}); raises SqlCommandError."""
    checked = _check_token(token if token is not None else os.environ.get("KEYRAIL_ADMIN_TOKEN", ""))
    base = _base_url(url)
    return _payload(_post(base, query, checked), base)


def _cell(value: Any) -> str:
    return " ".join(str(value).split("\t"))  # a tab inside a value would shift the columns


def run_sql(sql: str, url: str | None, token: str | None) -> int:
    try:
        payload = query(sql, url, token)
    except SqlCommandError as exc:
        print(f"keyrail sql: {exc}", file=sys.stderr)
        return exc.exit_code
    rows = payload.get("rows") or []
    print("\t".join(_cell(c) for c in payload["columns"]))
    for row in rows:
        print("\t".join(_cell(v) for v in row))
    noun = "row" if len(rows) == 1 else "rows"
    print(f"({len(rows)} {noun}, {payload.get('elapsed_ms', 0)} ms)")
    return 0
