"""A full pool is a queue, not an outage: requests beyond the connections of a pool wait their turn,
and a healthy Redis or database is never held to be down for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapters.cache.redis import RedisPostsCache, create_client
from adapters.clock import SystemClock
from adapters.sqlalchemy.engine import EngineOptions, SqlUnitsOfWork, create_engine
from adapters.sqlalchemy.uow import SqlUnitOfWork
from application.ports import CacheHit, CacheLookup, CacheMiss, CacheOutage
from domain.posts import NewPost, PostQuota, PostText
from domain.users import Email, NewUser
from tests.conftest import migrate_to
from tests.integration.faults import TcpProxy

REQUESTS = 200
DATABASE_REQUESTS = 40
TINY_POOL = 2


@pytest.fixture
async def tiny_redis_pool(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisPostsCache]:
    cache = RedisPostsCache(
        create_client(redis_url, 0.5, max_connections=TINY_POOL),
        ttl_seconds=60,
        prefix=redis_prefix,
        max_connections=TINY_POOL,
    )
    yield cache
    await cache.close()


@pytest.mark.redis
async def test_requests_beyond_the_redis_pool_wait_and_redis_is_not_declared_down(
    tiny_redis_pool: RedisPostsCache,
) -> None:
    async def read_then_fill(user_id: int) -> CacheLookup:
        missed = await tiny_redis_pool.lookup(user_id, "v1")
        assert isinstance(missed, CacheMiss)
        await tiny_redis_pool.fill(user_id, "v1", missed.version, b"[]")
        return await tiny_redis_pool.lookup(user_id, "v1")

    # One request per user, so that each one's fill stays current.
    lookups = await asyncio.gather(*(read_then_fill(user_id) for user_id in range(REQUESTS)))

    payloads = [found.payload if isinstance(found, CacheHit) else found for found in lookups]
    assert payloads == [b"[]"] * REQUESTS
    assert not tiny_redis_pool.cooling_down


@pytest.mark.redis
async def test_a_redis_that_stops_answering_is_an_outage_after_its_timeout(
    redis_url: str, redis_prefix: str
) -> None:
    url = make_url(redis_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 6379)
    await proxy.start()
    client = create_client(f"redis://127.0.0.1:{proxy.port}/{url.database or 0}", 0.5)
    cache = RedisPostsCache(client, ttl_seconds=60, prefix=redis_prefix)
    try:
        assert isinstance(await cache.lookup(1, "v1"), CacheMiss)
        proxy.freeze()
        started = time.monotonic()

        async with asyncio.timeout(5):
            found = await cache.lookup(1, "v1")

        assert isinstance(found, CacheOutage)
        assert time.monotonic() - started < 1.0
        assert cache.cooling_down
    finally:
        await proxy.close()
        await cache.close()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}"
        migrate_to(url)
        return url
    mysql_url: str = request.getfixturevalue("mysql_url")
    return mysql_url


async def test_units_of_work_beyond_the_database_pool_wait_their_turn(database_url: str) -> None:
    # The pool's own timeout is far shorter than the wait in line (the machine is shared: generous).
    options = EngineOptions(
        pool_size=TINY_POOL, max_overflow=0, pool_timeout_seconds=0.05, operation_timeout_seconds=30
    )
    engine = create_engine(database_url, options)
    uow = SqlUnitsOfWork(engine, options, SystemClock())
    try:
        async with uow() as work:
            owner = await work.users.add(NewUser(Email("pool@example.com"), "hash", SystemClock().now()))
            await work.commit()

        async def read_and_write(number: int) -> int:
            async with uow() as work:
                assert isinstance(work, SqlUnitOfWork)
                await work.users.get(owner.id)
                # Hold the connection a little, as a slow statement would.
                async with work.guard():
                    await (await work.connection()).execute(text("SELECT 1"))
                await asyncio.sleep(0.001)
                new = NewPost(owner.id, PostText(f"post {number}"))
                (post_id,) = await work.posts.add_all([new], PostQuota())
                await work.commit()
            return post_id

        ids = await asyncio.gather(*(read_and_write(number) for number in range(DATABASE_REQUESTS)))
        assert len(set(ids)) == DATABASE_REQUESTS
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
