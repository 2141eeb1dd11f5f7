"""The shared limiter's fallback: while the shared store fails, the process counts alone, never open."""

from __future__ import annotations

from limits.errors import StorageError

from adapters.limits import FallbackRateLimiter, in_process_limiter
from application.limits import Rate, RateLimiter, Rates, Room

TWO_PER_HOUR = (Rate(2, 3600),)


class Switchable(RateLimiter):
    """The in-process limiter standing in for Redis, made to fail on demand."""

    def __init__(self) -> None:
        self.inner = in_process_limiter()
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise StorageError(ConnectionError("refused"))

    async def hit(self, kind: str, rates: Rates, key: str) -> float | None:
        self._check()
        return await self.inner.hit(kind, rates, key)

    async def room(self, kind: str, rates: Rates, key: str) -> Room:
        self._check()
        return await self.inner.room(kind, rates, key)

    async def clear(self, kind: str, rates: Rates, key: str) -> None:
        self._check()
        await self.inner.clear(kind, rates, key)


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_with_the_shared_store_down_the_process_enforces_the_limit_alone() -> None:
    shared, timer = Switchable(), Timer()
    limiter = FallbackRateLimiter(shared, in_process_limiter(), cooldown_seconds=1.0, timer=timer)
    assert await limiter.hit("register", TWO_PER_HOUR, "192.0.2.1") is None
    shared.down = True

    results = [await limiter.hit("register", TWO_PER_HOUR, "192.0.2.1") for _ in range(3)]

    assert results[:2] == [None, None]
    assert results[2] is not None
    assert (await limiter.room("register", TWO_PER_HOUR, "192.0.2.1")).remaining == 0


async def test_after_a_failure_the_shared_store_is_left_alone_for_the_cooldown() -> None:
    shared, timer = Switchable(), Timer()
    limiter = FallbackRateLimiter(shared, in_process_limiter(), cooldown_seconds=1.0, timer=timer)
    shared.down = True
    await limiter.hit("post", TWO_PER_HOUR, "7")
    calls = shared.calls

    await limiter.hit("post", TWO_PER_HOUR, "7")
    assert shared.calls == calls

    shared.down = False
    timer.now = 1.0
    assert await limiter.hit("post", TWO_PER_HOUR, "7") is None
    assert shared.calls == calls + 1
