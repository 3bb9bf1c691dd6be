"""The pooled upstream HTTP client.

aiohttp directly rather than httpx: SPEC §8 measured it as the leanest client on this path
(0.61 ms vs 1.44 ms CPU per request for httpx's default transport), and the upstream client
dominates the per-request CPU budget.
"""

from __future__ import annotations

import aiohttp


def new_upstream_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
        headers={"User-Agent": "keyrail"},
    )
