"""The RateLimiter port on the `limits` library: moving windows counted in the process or in Redis."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from application.limits import Rate, RateLimiter, Rates, Room

# redis-py is imported by the functions that use Redis, so that a process without Redis (the
# embedded default) never loads it.
if TYPE_CHECKING:
    from adapters.cache.redis import RedisClient

log = logging.getLogger(__name__)


def _item(kind: str, rate: Rate) -> RateLimitItem:
    return RateLimitItemPerSecond(rate.amount, rate.seconds, namespace=kind)


def _identifier(key: str) -> str:
    # Emails and addresses stay out of the store's key names, which also stay short.
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class LimitsRateLimiter(RateLimiter):
    """Moving windows (every event timestamped, so a window is exact and Retry-After is when its oldest
    event leaves it) on one `limits` storage. Each kind, rate and key is one storage key: nothing
    spans keys, so a Redis Cluster serves it as well as one Redis."""

    def __init__(self, storage: Storage) -> None:
        self._windows = MovingWindowRateLimiter(storage)

    async def hit(self, kind: str, rates: Rates, key: str) -> float | None:
        identifier = _identifier(key)
        items = [_item(kind, rate) for rate in rates]
        # With several rates, none is counted unless all allow the event (one round trip more each).
        for item in items if len(items) > 1 else ():
            if not await self._windows.test(item, identifier):
                return await self._retry_after(item, identifier)
        for item in items:
            if not await self._windows.hit(item, identifier):
                return await self._retry_after(item, identifier)
        return None

    async def room(self, kind: str, rates: Rates, key: str) -> Room:
        identifier = _identifier(key)
        remaining: int | None = None
        retry_after = 0.0
        for rate in rates:
            item = _item(kind, rate)
            stats = await self._windows.get_window_stats(item, identifier)
            remaining = stats.remaining if remaining is None else min(remaining, stats.remaining)
            if stats.remaining == 0:
                retry_after = max(retry_after, stats.reset_time - time.time())
        return Room(remaining if remaining is not None else 2**31, retry_after)

    async def clear(self, kind: str, rates: Rates, key: str) -> None:
        identifier = _identifier(key)
        for rate in rates:
            await self._windows.clear(_item(kind, rate), identifier)

    async def _retry_after(self, item: RateLimitItem, identifier: str) -> float:
        stats = await self._windows.get_window_stats(item, identifier)
        return max(0.0, stats.reset_time - time.time())


def in_process_limiter() -> LimitsRateLimiter:
    return LimitsRateLimiter(MemoryStorage())


def redis_storage(client: RedisClient, url: str, prefix: str, timeout_seconds: float) -> RedisStorage:
    """`limits`' Redis storage on redis-py (not coredis) over `client`'s connection pool, so it has
    the same timeouts and retry policy as the cache; its errors come out as StorageError.

    For a Redis Cluster, `limits` opens a cluster client of its own with `timeout_seconds` (it takes
    no client); each counter is one key, so no operation spans slots."""
    from redis.asyncio import RedisCluster

    if isinstance(client, RedisCluster):
        return RedisClusterStorage(
            f"async+{url}",
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=f"{prefix}limits",
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
        )
    options: dict[str, Any] = {"connection_pool": client.connection_pool}
    return RedisStorage(
        f"async+{url}",
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=f"{prefix}limits",
        **options,
    )


async def close_redis_storage(storage: RedisStorage) -> None:
    """`limits` has no close: the cluster client it opened for a Redis Cluster is closed here (over one
    Redis it uses the pool of a client that the caller closes)."""
    from redis.asyncio import RedisCluster

    client = getattr(storage.bridge, "storage", None)
    if isinstance(storage, RedisClusterStorage) and isinstance(client, RedisCluster):
        await client.aclose()


class FallbackRateLimiter(RateLimiter):
    """Counts in the shared store; while it fails, each process counts on its own instead (never open,
    never an error), and leaves the store alone for `cooldown_seconds` after each failure. Counts
    made meanwhile stay in the process: the shared ones resume where the store left them."""

    def __init__(
        self,
        shared: RateLimiter,
        local: RateLimiter,
        cooldown_seconds: float = 1.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._local = local
        self._cooldown = cooldown_seconds
        self._timer = timer
        self._down_until = 0.0

    async def hit(self, kind: str, rates: Rates, key: str) -> float | None:
        if self._timer() >= self._down_until:
            try:
                return await self._shared.hit(kind, rates, key)
            except (StorageError, OSError, TimeoutError) as exc:
                self._failed(exc)
        return await self._local.hit(kind, rates, key)

    async def room(self, kind: str, rates: Rates, key: str) -> Room:
        if self._timer() >= self._down_until:
            try:
                return await self._shared.room(kind, rates, key)
            except (StorageError, OSError, TimeoutError) as exc:
                self._failed(exc)
        return await self._local.room(kind, rates, key)

    async def clear(self, kind: str, rates: Rates, key: str) -> None:
        await self._local.clear(kind, rates, key)
        if self._timer() >= self._down_until:
            try:
                await self._shared.clear(kind, rates, key)
            except (StorageError, OSError, TimeoutError) as exc:
                self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        log.warning("rate limit store unavailable, counting in this process: %r", exc)
        self._down_until = self._timer() + self._cooldown
