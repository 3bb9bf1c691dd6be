"""`keyrail sql`: read-only SQL over the activity log via the admin API (chDB has one owner)."""

from __future__ import annotations

import os

import httpx


def run_sql(query: str, url: str | None, token: str | None) -> int:
    base = url or f"http://127.0.0.1:{os.environ.get('KEYRAIL_PORT', '8080')}"
    token = token or os.environ.get("KEYRAIL_ADMIN_TOKEN", "")
    if not token:
        print("keyrail sql: pass --token or set KEYRAIL_ADMIN_TOKEN")
        return 2
    response = httpx.post(
        f"{base}/admin/v1/sql", json={"sql": query}, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    payload = response.json()
    if response.status_code != 200:
        print(f"error: {payload['error']['message']}")
        return 1
    print("\t".join(payload["columns"]))
    for row in payload["rows"]:
        print("\t".join(str(v) for v in row))
    print(f"({len(payload['rows'])} rows, {payload['elapsed_ms']} ms)")
    return 0
