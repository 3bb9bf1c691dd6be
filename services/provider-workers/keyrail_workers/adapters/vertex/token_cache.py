"""Access tokens per credential version: reused until shortly before they expire, one refresh at a time.

Keyed like the credentials (Vault reference, version): a rotation asks for a new version, whose
token is fetched and replaces the old one in memory. Concurrent callers that find no usable token
share one fetch (no thundering herd on the token endpoint); a failed fetch is not cached, so the
next request tries again. `drop` forgets a token the upstream refused (a 401) unless another caller
already replaced it, so many requests failing with one stale token cause a single refresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from keyrail_workers.adapters.base import AccessToken

REFRESH_MARGIN_S = 225.0  # google-auth refreshes when less than 3 min 45 s remain
Key = tuple[str, int]  # (credential reference, version)


class TokenCache:
    def __init__(
        self, margin_s: float = REFRESH_MARGIN_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._margin_s = margin_s
        self._clock = clock
        self._tokens: dict[str, tuple[int, AccessToken, float]] = {}  # ref -> (version, token, refresh at)
        self._fetching: dict[Key, asyncio.Future[AccessToken]] = {}

    async def get(self, key: Key, fetch: Callable[[], Awaitable[AccessToken]]) -> AccessToken:
        """The cached token of this credential version, or the one `fetch` gets (its errors propagate
        to every caller waiting on it)."""
        ref, version = key
        cached = self._tokens.get(ref)
        if cached is not None and cached[0] == version and self._clock() < cached[2]:
            return cached[1]
        fetching = self._fetching.get(key)
        if fetching is None:
            fetching = asyncio.ensure_future(self._fetch(key, fetch))
            self._fetching[key] = fetching
            fetching.add_done_callback(lambda _: self._fetching.pop(key, None))
        # Shielded: a caller that gives up (its deadline) does not cancel the others' fetch.
        return await asyncio.shield(fetching)

    async def _fetch(self, key: Key, fetch: Callable[[], Awaitable[AccessToken]]) -> AccessToken:
        started = self._clock()
        token = await fetch()
        ref, version = key
        current = self._tokens.get(ref)
        if current is None or current[0] <= version:
            refresh_at = started + max(token.expires_in_s - self._margin_s, 0.0)
            self._tokens[ref] = (version, token, refresh_at)
        return token

    def drop(self, key: Key, token: AccessToken) -> None:
        """Forget `token` (the upstream said 401 to it); a newer token already cached stays."""
        cached = self._tokens.get(key[0])
        if cached is not None and cached[1] is token:
            del self._tokens[key[0]]
