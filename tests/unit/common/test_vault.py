"""`CachedCredentials`: the worker's credential cache, over an in-memory stand-in of the Vault store."""

from __future__ import annotations

import asyncio

import pytest

from keyrail_common.vault import CachedCredentials, CredentialStore, credential_path

PATH = credential_path("org_1", "openai-prod")
OTHER = credential_path("org_1", "groq-prod")


class FakeStore(CredentialStore):
    """Versions of each path in memory; counts reads. `gate` (when set) holds reads until released."""

    def __init__(self) -> None:
        self.versions: dict[str, dict[int, dict[str, object]]] = {}
        self.reads: list[tuple[str, int]] = []
        self.gate: asyncio.Event | None = None

    def put(self, path: str, version: int, api_key: str) -> None:
        self.versions.setdefault(path, {})[version] = {"api_key": api_key}

    async def read(self, path: str, version: int) -> dict[str, object]:
        self.reads.append((path, version))
        if self.gate is not None:
            await self.gate.wait()
        return dict(self.versions[path][version])


@pytest.fixture
def store() -> FakeStore:
    fake = FakeStore()
    fake.put(PATH, 1, "sk-v1")
    fake.put(PATH, 2, "sk-v2")
    fake.put(OTHER, 1, "gsk-other")
    return fake


async def test_one_read_per_version_then_memory(store: FakeStore) -> None:
    cache = CachedCredentials(store)

    first = await cache.get(PATH, 1)
    again = await cache.get(PATH, 1)

    assert first == again == {"api_key": "sk-v1"}
    assert store.reads == [(PATH, 1)]


async def test_references_are_cached_independently(store: FakeStore) -> None:
    cache = CachedCredentials(store)

    assert (await cache.get(PATH, 1))["api_key"] == "sk-v1"
    assert (await cache.get(OTHER, 1))["api_key"] == "gsk-other"
    assert (await cache.get(PATH, 1))["api_key"] == "sk-v1"
    assert (await cache.get(OTHER, 1))["api_key"] == "gsk-other"

    assert sorted(store.reads) == sorted([(PATH, 1), (OTHER, 1)])


async def test_a_higher_version_replaces_the_old_one(store: FakeStore) -> None:
    cache = CachedCredentials(store)
    await cache.get(PATH, 1)

    rotated = await cache.get(PATH, 2)
    again = await cache.get(PATH, 2)

    assert rotated == again == {"api_key": "sk-v2"}
    assert store.reads == [(PATH, 1), (PATH, 2)]
    # One version per reference: the old credential is gone from memory.
    assert await cache.get(PATH, 1) == {"api_key": "sk-v1"}
    assert store.reads == [(PATH, 1), (PATH, 2), (PATH, 1)]


async def test_a_late_call_with_the_old_version_does_not_evict_the_new_one(store: FakeStore) -> None:
    cache = CachedCredentials(store)
    await cache.get(PATH, 2)

    assert await cache.get(PATH, 1) == {"api_key": "sk-v1"}  # an in-flight call routed before the rotation
    assert await cache.get(PATH, 2) == {"api_key": "sk-v2"}

    assert store.reads == [(PATH, 2), (PATH, 1)]  # version 2 was still in memory


async def test_a_failed_read_caches_nothing(store: FakeStore) -> None:
    cache = CachedCredentials(store)

    with pytest.raises(KeyError):
        await cache.get(PATH, 9)
    store.put(PATH, 9, "sk-v9")

    assert await cache.get(PATH, 9) == {"api_key": "sk-v9"}
    assert store.reads == [(PATH, 9), (PATH, 9)]


async def test_concurrent_first_gets_of_one_version_share_one_read(store: FakeStore) -> None:
    cache = CachedCredentials(store)
    store.gate = asyncio.Event()

    gets = [asyncio.create_task(cache.get(PATH, 1)) for _ in range(5)]
    await asyncio.sleep(0)
    store.gate.set()
    results = await asyncio.gather(*gets)

    assert all(r == {"api_key": "sk-v1"} for r in results)
    assert store.reads == [(PATH, 1)]
