"""Each contract suite runs once per adapter of its port: the in-process fakes and the real ones."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

import attrs
import pytest
from sqlalchemy.engine import make_url

from adapters.cache.memory import InProcessPostsCache
from adapters.cache.redis import RedisClient, RedisPostsCache, create_client
from adapters.clock import SystemClock
from application.ports import PostsCache
from domain.ports import UnitOfWorkFactory
from entrypoints.bootstrap import open_store
from entrypoints.settings import Settings
from tests import mysql_redis
from tests.conftest import migrate_to
from tests.integration.faults import TcpProxy
from tests.rediscluster import LocalRedisCluster

CACHE_TTL_SECONDS = 0.5


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("mysql", marks=pytest.mark.mysql)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        sqlite_url = f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}"
        migrate_to(sqlite_url)
        return sqlite_url
    mysql_url: str = request.getfixturevalue("mysql_url")
    return mysql_url


@pytest.fixture
async def uow(database_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[UnitOfWorkFactory]:
    async with AsyncExitStack() as closing:
        yield open_store(make_settings(database_url=database_url), SystemClock(), closing)


@pytest.fixture(
    params=[
        "in-process",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
async def make_cache(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], PostsCache]]:
    """Builds caches that share their state the way the backend shares it between processes."""
    closers: list[RedisPostsCache] = []
    if request.param == "in-process":
        shared = InProcessPostsCache(CACHE_TTL_SECONDS)
        yield lambda: shared
        return
    clients: list[RedisClient] = []
    if request.param == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
    else:
        cluster: LocalRedisCluster = request.getfixturevalue("redis_cluster")
        redis_url, prefix = cluster.url, mysql_redis.unique_name("") + ":"
        # A cluster client's first command discovers the topology first, which on a busy machine
        # can outlast the suite's short TTL: the clients do it before the test starts.
        clients = [create_client(redis_url, 0.5) for _ in range(2)]
        for client in clients:
            await client.initialize()

    def make() -> PostsCache:
        client = clients.pop() if clients else create_client(redis_url, 0.5)
        closers.append(RedisPostsCache(client, CACHE_TTL_SECONDS, prefix=prefix))
        return closers[-1]

    yield make
    for cache in closers:
        await cache.close()
    for client in clients:
        await client.aclose()


@pytest.fixture
def cache(make_cache: Callable[[], PostsCache]) -> PostsCache:
    return make_cache()


@attrs.frozen
class CacheBackend:
    """`make` builds caches that share their state the way the backend shares it between processes;
    `outage` makes the backend unreachable for them while it lasts (a no-op where nothing can fail,
    and then `can_fail` is False)."""

    make: Callable[[], PostsCache]
    outage: Callable[[], AbstractAsyncContextManager[None]]
    can_fail: bool = True


@asynccontextmanager
async def _nothing_fails() -> AsyncIterator[None]:
    yield


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
async def cache_backend(request: pytest.FixtureRequest) -> AsyncIterator[CacheBackend]:
    """For the promises about failures: Redis is reached through a proxy the test can cut. (A
    cluster runs the same adapter; its nodes announce their own addresses, which no proxy hides.)"""
    if request.param == "in-process":
        shared = InProcessPostsCache(CACHE_TTL_SECONDS)
        yield CacheBackend(lambda: shared, _nothing_fails, can_fail=False)
        return
    redis_url = make_url(request.getfixturevalue("redis_url"))
    prefix: str = request.getfixturevalue("redis_prefix")
    proxy = TcpProxy(redis_url.host or "127.0.0.1", redis_url.port or 6379)
    await proxy.start()
    closers: list[RedisPostsCache] = []

    def make() -> PostsCache:
        client = create_client(f"redis://127.0.0.1:{proxy.port}/{redis_url.database or 0}", 0.5)
        closers.append(RedisPostsCache(client, CACHE_TTL_SECONDS, prefix=prefix, cooldown_seconds=0.2))
        return closers[-1]

    @asynccontextmanager
    async def outage() -> AsyncIterator[None]:
        await proxy.cut()
        try:
            yield
        finally:
            await proxy.restore()

    yield CacheBackend(make, outage)
    for cache in closers:
        await cache.close()
    await proxy.close()
