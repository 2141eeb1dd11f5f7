"""The RateLimiter contract, held by the in-process counters and by Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.cache.redis import create_client
from adapters.limits import LimitsRateLimiter, in_process_limiter, redis_storage
from application.limits import Rate, RateLimiter

THREE_PER_HOUR = (Rate(3, 3600),)


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "in-process":
        yield in_process_limiter()
        return
    redis_url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    client = create_client(redis_url, 0.5)
    yield LimitsRateLimiter(redis_storage(client, redis_url, prefix))
    await client.aclose()


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
