"""The RateLimiter contract, held by the in-process counters, by Redis and by a Redis Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from limits.aio.storage import RedisStorage

from adapters.cache.redis import RedisClient, create_client
from adapters.limits import LimitsRateLimiter, close_redis_storage, in_process_limiter, redis_storage
from application.limits import Rate, RateLimiter
from tests import mysql_redis
from tests.rediscluster import LocalRedisCluster

THREE_PER_HOUR = (Rate(3, 3600),)
TIMEOUT_SECONDS = 0.5


@pytest.fixture(
    params=[
        "in-process",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], RateLimiter]]:
    """Builds limiters that share their counts the way the backend shares them between processes."""
    if request.param == "in-process":
        shared = in_process_limiter()
        yield lambda: shared
        return
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
    else:
        cluster: LocalRedisCluster = request.getfixturevalue("redis_cluster")
        url, prefix = cluster.url, mysql_redis.unique_name("") + ":"
    clients: list[RedisClient] = []
    opened: list[RedisStorage] = []

    def make() -> RateLimiter:
        clients.append(create_client(url, TIMEOUT_SECONDS))
        opened.append(redis_storage(clients[-1], url, prefix, TIMEOUT_SECONDS))
        return LimitsRateLimiter(opened[-1])

    yield make
    for storage in opened:
        await close_redis_storage(storage)
    for client in clients:
        await client.aclose()


@pytest.fixture
def limiter(make_limiter: Callable[[], RateLimiter]) -> RateLimiter:
    return make_limiter()


async def test_hits_are_counted_until_the_rate_is_reached_then_refused_with_a_wait(
    limiter: RateLimiter,
) -> None:
    for _ in range(3):
        assert await limiter.hit("register", THREE_PER_HOUR, "192.0.2.1") is None

    retry_after = await limiter.hit("register", THREE_PER_HOUR, "192.0.2.1")

    assert retry_after is not None
    assert 3500 < retry_after <= 3600
    room = await limiter.room("register", THREE_PER_HOUR, "192.0.2.1")
    assert room.remaining == 0
    assert 3500 < room.retry_after <= 3600


async def test_keys_and_kinds_are_counted_apart(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.hit("register", THREE_PER_HOUR, "192.0.2.1")

    assert await limiter.hit("register", THREE_PER_HOUR, "192.0.2.2") is None
    assert await limiter.hit("refresh", THREE_PER_HOUR, "192.0.2.1") is None
    assert (await limiter.room("register", THREE_PER_HOUR, "192.0.2.2")).remaining == 2


async def test_the_tightest_of_several_rates_decides(limiter: RateLimiter) -> None:
    rates = (Rate(10, 3600), Rate(2, 60))
    assert await limiter.hit("post", rates, "7") is None
    assert (await limiter.room("post", rates, "7")).remaining == 1
    assert await limiter.hit("post", rates, "7") is None

    assert await limiter.hit("post", rates, "7") is not None
    assert (await limiter.room("post", rates, "7")).remaining == 0


async def test_a_refused_hit_is_not_counted(limiter: RateLimiter) -> None:
    rates = (Rate(10, 3600), Rate(1, 60))
    await limiter.hit("post", rates, "7")
    for _ in range(5):
        await limiter.hit("post", rates, "7")

    assert (await limiter.room("post", (Rate(10, 3600),), "7")).remaining == 9


async def test_clearing_a_key_gives_it_its_whole_rate_back(limiter: RateLimiter) -> None:
    for _ in range(3):
        await limiter.hit("login", THREE_PER_HOUR, "ann@example.com 192.0.2.1")

    await limiter.clear("login", THREE_PER_HOUR, "ann@example.com 192.0.2.1")

    room = await limiter.room("login", THREE_PER_HOUR, "ann@example.com 192.0.2.1")
    assert room.remaining == 3
    assert room.retry_after == 0


async def test_a_window_lets_events_in_again_once_it_has_moved_on(limiter: RateLimiter) -> None:
    one_per_second = (Rate(1, 1),)
    await limiter.hit("post", one_per_second, "7")
    retry_after = await limiter.hit("post", one_per_second, "7")
    assert retry_after is not None

    await asyncio.sleep(retry_after + 0.05)

    assert await limiter.hit("post", one_per_second, "7") is None


async def test_limiters_of_one_backend_share_counts_like_processes(
    make_limiter: Callable[[], RateLimiter],
) -> None:
    one, other = make_limiter(), make_limiter()
    for _ in range(3):
        await one.hit("register", THREE_PER_HOUR, "192.0.2.1")
    assert await other.hit("register", THREE_PER_HOUR, "192.0.2.1") is not None
