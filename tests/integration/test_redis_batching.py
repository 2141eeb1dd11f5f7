"""The Redis cache sends the lookups asked for in one turn of the event loop together: one MGET
(one round trip, one connection slot) for up to MAX_BATCH of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import ConnectionPool, Redis

from adapters.cache.redis import MAX_CONNECTIONS, RedisPostsCache
from application.ports import CacheHit, CacheMiss

pytestmark = pytest.mark.redis


class CountingRedis(Redis):
    mgets: list[int]

    async def mget(self, *args: Any, **kwargs: Any) -> Any:
        self.mgets.append(len(args[0]) if len(args) == 1 and isinstance(args[0], list) else len(args))
        return await super().mget(*args, **kwargs)


async def fill(cache: RedisPostsCache, user_id: int, payload: bytes) -> None:
    missed = await cache.lookup(user_id, "v1")
    assert isinstance(missed, CacheMiss)
    await cache.fill(user_id, "v1", missed.version, payload)


@pytest.fixture
async def counted(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[RedisPostsCache, CountingRedis]]:
    pool = ConnectionPool.from_url(redis_url, max_connections=MAX_CONNECTIONS)
    client = CountingRedis(connection_pool=pool)
    client.mgets = []
    cache = RedisPostsCache(client, ttl_seconds=60, prefix=redis_prefix)
    yield cache, client
    await cache.close()
    # The client closes only a pool of its own making.
    await pool.aclose()


async def test_the_lookups_of_one_turn_go_in_one_mget(counted: tuple[RedisPostsCache, CountingRedis]) -> None:
    cache, client = counted
    for user_id in (1, 2, 3):
        await fill(cache, user_id, f"{user_id}".encode())
    client.mgets.clear()

    found = await asyncio.gather(*(cache.lookup_all(user_id, ("session", "v1")) for user_id in (1, 2, 3)))

    assert client.mgets == [9]  # three users' version, session and list keys
    assert [each.payload for _, each in found if isinstance(each, CacheHit)] == [b"1", b"2", b"3"]
    assert all(isinstance(session, CacheMiss) for session, _ in found)


async def test_beyond_max_batch_lookups_go_in_several(counted: tuple[RedisPostsCache, CountingRedis]) -> None:
    cache, client = counted
    users = range(RedisPostsCache.MAX_BATCH * 2 + 1)
    await asyncio.gather(*(cache.lookup(user_id, "v1") for user_id in users))
    client.mgets.clear()

    await asyncio.gather(*(cache.lookup(user_id, "v1") for user_id in users))

    assert sorted(client.mgets) == [2, RedisPostsCache.MAX_BATCH * 2, RedisPostsCache.MAX_BATCH * 2]


async def test_a_lookup_whose_request_went_away_leaves_the_others_their_answers(
    counted: tuple[RedisPostsCache, CountingRedis],
) -> None:
    cache, _ = counted
    await fill(cache, 2, b"two")
    gone = asyncio.ensure_future(cache.lookup(1, "v1"))
    kept = asyncio.ensure_future(cache.lookup(2, "v1"))
    await asyncio.sleep(0)  # both have asked

    gone.cancel()

    found = await kept
    assert isinstance(found, CacheHit)
    assert found.payload == b"two"
    assert gone.cancelled()
    assert not cache.cooling_down
