"""The PostsCache contract, held by the in-process cache and by Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from domain.ports import PostsCache
from tests.contract.conftest import CACHE_TTL_SECONDS

# Bytes a JSON list never holds, and the separator the Redis adapter puts before the payload.
PAYLOAD = b'[{"id": 1}]:\x00\xff'


async def test_a_fill_is_served_on_the_next_lookup(cache: PostsCache) -> None:
    first = await cache.lookup(1, "v1")
    assert first.payload is None
    await cache.fill(1, "v1", first.version, PAYLOAD)
    second = await cache.lookup(1, "v1")
    assert (second.payload, second.version) == (PAYLOAD, first.version)


async def test_entries_are_kept_per_user_and_per_view(cache: PostsCache) -> None:
    await cache.fill(1, "v1", (await cache.lookup(1, "v1")).version, b"one")
    assert (await cache.lookup(2, "v1")).payload is None
    assert (await cache.lookup(1, "compat")).payload is None
    assert (await cache.lookup(1, "v1")).payload == b"one"


async def test_invalidation_drops_every_view_of_that_user_only(cache: PostsCache) -> None:
    for user_id in (1, 2):
        for view in ("v1", "compat"):
            await cache.fill(user_id, view, (await cache.lookup(user_id, view)).version, b"list")
    await cache.invalidate(1)
    assert (await cache.lookup(1, "v1")).payload is None
    assert (await cache.lookup(1, "compat")).payload is None
    assert (await cache.lookup(2, "v1")).payload == b"list"


async def test_a_fill_that_raced_with_an_invalidation_is_never_served(cache: PostsCache) -> None:
    before_write = await cache.lookup(1, "v1")
    await cache.invalidate(1)
    await cache.fill(1, "v1", before_write.version, b"stale")
    after = await cache.lookup(1, "v1")
    assert after.payload is None
    assert after.version != before_write.version
    await cache.fill(1, "v1", after.version, b"fresh")
    assert (await cache.lookup(1, "v1")).payload == b"fresh"


async def test_a_stale_fill_does_not_come_back_after_later_invalidations(cache: PostsCache) -> None:
    stale = await cache.lookup(1, "v1")
    for _ in range(3):
        await cache.invalidate(1)
        await cache.fill(1, "v1", stale.version, b"stale")
        assert (await cache.lookup(1, "v1")).payload is None


async def test_entries_expire_after_the_ttl(cache: PostsCache) -> None:
    await cache.fill(1, "v1", (await cache.lookup(1, "v1")).version, b"list")
    await asyncio.sleep(CACHE_TTL_SECONDS + 0.3)
    assert (await cache.lookup(1, "v1")).payload is None


async def test_caches_of_one_backend_agree_like_processes_sharing_it(
    make_cache: Callable[[], PostsCache],
) -> None:
    reader, writer = make_cache(), make_cache()
    await reader.fill(1, "v1", (await reader.lookup(1, "v1")).version, b"list")
    assert (await writer.lookup(1, "v1")).payload == b"list"
    await writer.invalidate(1)
    assert (await reader.lookup(1, "v1")).payload is None
