"""The PostsCache contract, held by the in-process cache and by Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from application.errors import CacheUnavailable
from application.ports import CacheHit, CacheMiss, CacheOutage, PostsCache
from tests.contract.conftest import CACHE_TTL_SECONDS, CacheBackend

# Bytes a JSON list never holds, and the separator the Redis adapter puts before the payload.
PAYLOAD = b'[{"id": 1}]:\x00\xff'


async def miss(cache: PostsCache, user_id: int = 1, view: str = "v1") -> CacheMiss:
    found = await cache.lookup(user_id, view)
    assert isinstance(found, CacheMiss)
    return found


async def hit(cache: PostsCache, user_id: int = 1, view: str = "v1") -> bytes:
    found = await cache.lookup(user_id, view)
    assert isinstance(found, CacheHit)
    return found.payload


async def test_a_fill_is_served_on_the_next_lookup(cache: PostsCache) -> None:
    first = await miss(cache)
    await cache.fill(1, "v1", first.version, PAYLOAD)
    assert await hit(cache) == PAYLOAD


async def test_a_hit_names_its_version_and_a_fill_against_it_replaces_the_entry(cache: PostsCache) -> None:
    await cache.fill(1, "v1", (await miss(cache)).version, b"old")
    found = await cache.lookup(1, "v1")
    assert isinstance(found, CacheHit)

    await cache.fill(1, "v1", found.version, b"new")

    assert await hit(cache) == b"new"


async def test_entries_are_kept_per_user_and_per_view(cache: PostsCache) -> None:
    await cache.fill(1, "v1", (await miss(cache)).version, b"one")
    await miss(cache, 2, "v1")
    await miss(cache, 1, "compat")
    assert await hit(cache) == b"one"


async def test_invalidation_drops_every_view_of_that_user_only(cache: PostsCache) -> None:
    for user_id in (1, 2):
        for view in ("v1", "compat"):
            await cache.fill(user_id, view, (await miss(cache, user_id, view)).version, b"list")
    await cache.invalidate(1)
    await miss(cache, 1, "v1")
    await miss(cache, 1, "compat")
    assert await hit(cache, 2, "v1") == b"list"


async def test_a_fill_that_raced_with_an_invalidation_is_never_served(cache: PostsCache) -> None:
    before_write = await miss(cache)
    await cache.invalidate(1)
    await cache.fill(1, "v1", before_write.version, b"stale")
    after = await miss(cache)
    assert after.version != before_write.version
    await cache.fill(1, "v1", after.version, b"fresh")
    assert await hit(cache) == b"fresh"


async def test_a_stale_fill_does_not_come_back_after_later_invalidations(cache: PostsCache) -> None:
    stale = await miss(cache)
    for _ in range(3):
        await cache.invalidate(1)
        await cache.fill(1, "v1", stale.version, b"stale")
        await miss(cache)


async def test_entries_expire_after_the_ttl(cache: PostsCache) -> None:
    await cache.fill(1, "v1", (await miss(cache)).version, b"list")
    await asyncio.sleep(CACHE_TTL_SECONDS + 0.3)
    await miss(cache)


async def test_caches_of_one_backend_agree_like_processes_sharing_it(
    make_cache: Callable[[], PostsCache],
) -> None:
    reader, writer = make_cache(), make_cache()
    await reader.fill(1, "v1", (await miss(reader)).version, b"list")
    assert await hit(writer) == b"list"
    await writer.invalidate(1)
    await miss(reader)


async def test_a_failed_invalidation_is_sent_before_the_cache_serves_that_user_again(
    cache_backend: CacheBackend,
) -> None:
    writer, other = cache_backend.make(), cache_backend.make()
    await writer.fill(1, "v1", (await miss(writer)).version, b"before the write")
    assert await hit(other) == b"before the write"

    async with cache_backend.outage():
        with contextlib.suppress(CacheUnavailable):
            await writer.invalidate(1)
        assert not isinstance(await writer.lookup(1, "v1"), CacheHit)

    deadline = asyncio.get_running_loop().time() + 5
    while isinstance(found := await writer.lookup(1, "v1"), CacheOutage):
        assert asyncio.get_running_loop().time() < deadline, "the cache never came back"
        await asyncio.sleep(0.05)
    assert isinstance(found, CacheMiss)
    await miss(other)


async def test_lookups_asked_for_together_each_get_their_own_users_answer(cache: PostsCache) -> None:
    """Redis sends the lookups of one turn of the event loop together: each still gets its own."""
    users = range(1, 151)
    for user_id in users:
        if user_id % 3:
            await cache.fill(user_id, "v1", (await miss(cache, user_id)).version, f"list {user_id}".encode())

    found = await asyncio.gather(*(cache.lookup_all(user_id, ("v1", "v2")) for user_id in users))

    for user_id, (listed, other) in zip(users, found, strict=True):
        assert isinstance(other, CacheMiss)
        if user_id % 3:
            assert isinstance(listed, CacheHit)
            assert listed.payload == f"list {user_id}".encode()
        else:
            assert isinstance(listed, CacheMiss)


async def test_lookups_asked_for_together_during_an_outage_each_find_it(cache_backend: CacheBackend) -> None:
    cache = cache_backend.make()
    await miss(cache)

    async with cache_backend.outage():
        lookups = asyncio.gather(*(cache.lookup(user_id, "v1") for user_id in range(80)))
        found = await asyncio.wait_for(lookups, 5)

    expected = CacheOutage if cache_backend.can_fail else CacheMiss
    assert [type(each) for each in found] == [expected] * 80
