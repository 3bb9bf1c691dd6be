"""The token cache: reuse until the refresh margin, one fetch under concurrency, drop on a 401."""

from __future__ import annotations

import asyncio

from keyrail_workers.adapters.base import AccessToken
from keyrail_workers.adapters.vertex.token_cache import REFRESH_MARGIN_S, TokenCache

KEY = ("integrations/org_1/vertex-test", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Endpoint:
    """A token endpoint stand-in: numbered tokens, each fetch taking a turn of the event loop."""

    def __init__(self, lifetime_s: float = 3600.0, fail: bool = False) -> None:
        self.calls = 0
        self.lifetime_s = lifetime_s
        self.fail = fail

    async def fetch(self) -> AccessToken:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("token endpoint refused")
        return AccessToken(f"ya29.token-{self.calls}", self.lifetime_s)


async def test_a_token_is_reused_until_the_margin_before_its_expiry() -> None:
    clock, endpoint = Clock(), Endpoint(lifetime_s=3600)
    cache = TokenCache(clock=clock)

    first = await cache.get(KEY, endpoint.fetch)
    clock.now += 3600 - REFRESH_MARGIN_S - 1
    still = await cache.get(KEY, endpoint.fetch)
    clock.now += 2  # now inside the margin
    renewed = await cache.get(KEY, endpoint.fetch)

    assert (first.value, still.value, renewed.value) == ("ya29.token-1", "ya29.token-1", "ya29.token-2")
    assert endpoint.calls == 2


async def test_a_token_shorter_than_the_margin_is_fetched_again_every_time() -> None:
    endpoint = Endpoint(lifetime_s=60)
    cache = TokenCache(clock=Clock())

    await cache.get(KEY, endpoint.fetch)
    await cache.get(KEY, endpoint.fetch)

    assert endpoint.calls == 2


async def test_fifty_concurrent_first_callers_share_one_fetch() -> None:
    endpoint = Endpoint()
    cache = TokenCache(clock=Clock())

    tokens = await asyncio.gather(*(cache.get(KEY, endpoint.fetch) for _ in range(50)))

    assert endpoint.calls == 1
    assert {t.value for t in tokens} == {"ya29.token-1"}


async def test_a_failed_fetch_reaches_every_waiter_and_is_not_cached() -> None:
    endpoint = Endpoint(fail=True)
    cache = TokenCache(clock=Clock())

    results = await asyncio.gather(
        *(cache.get(KEY, endpoint.fetch) for _ in range(5)), return_exceptions=True
    )
    endpoint.fail = False
    token = await cache.get(KEY, endpoint.fetch)

    assert [type(r) for r in results] == [RuntimeError] * 5
    assert (endpoint.calls, token.value) == (2, "ya29.token-2")


async def test_a_caller_that_gives_up_does_not_cancel_the_others_fetch() -> None:
    endpoint = Endpoint()
    cache = TokenCache(clock=Clock())

    impatient = asyncio.ensure_future(cache.get(KEY, endpoint.fetch))
    patient = asyncio.ensure_future(cache.get(KEY, endpoint.fetch))
    await asyncio.sleep(0)
    impatient.cancel()

    assert (await patient).value == "ya29.token-1"
    assert endpoint.calls == 1


async def test_dropping_a_refused_token_makes_the_next_caller_fetch_once() -> None:
    endpoint = Endpoint()
    cache = TokenCache(clock=Clock())
    stale = await cache.get(KEY, endpoint.fetch)

    for _ in range(20):  # twenty requests that all got a 401 with the stale token
        cache.drop(KEY, stale)
    fresh = await asyncio.gather(*(cache.get(KEY, endpoint.fetch) for _ in range(20)))
    cache.drop(KEY, stale)  # a late 401 of the stale token leaves the fresh one alone

    assert {t.value for t in fresh} == {"ya29.token-2"}
    assert (await cache.get(KEY, endpoint.fetch)).value == "ya29.token-2"
    assert endpoint.calls == 2


async def test_a_rotated_credential_gets_its_own_token_and_replaces_the_old_one() -> None:
    endpoint = Endpoint()
    cache = TokenCache(clock=Clock())

    old = await cache.get(KEY, endpoint.fetch)
    new = await cache.get((KEY[0], 2), endpoint.fetch)
    again = await cache.get((KEY[0], 2), endpoint.fetch)

    assert (old.value, new.value, again.value) == ("ya29.token-1", "ya29.token-2", "ya29.token-2")
    assert endpoint.calls == 2


async def test_credentials_do_not_share_tokens() -> None:
    endpoint = Endpoint()
    cache = TokenCache(clock=Clock())

    mine = await cache.get(KEY, endpoint.fetch)
    theirs = await cache.get(("integrations/org_1/vertex-other", 1), endpoint.fetch)

    assert mine.value != theirs.value
