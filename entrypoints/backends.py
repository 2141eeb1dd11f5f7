"""Picks and opens the storage and cache backends that the configuration names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.cache.memory import InProcessPostsCache
from adapters.cache.redis import RedisClient, RedisPostsCache, create_client
from adapters.limits import (
    FallbackRateLimiter,
    LimitsRateLimiter,
    close_redis_storage,
    in_process_limiter,
    redis_storage,
)
from adapters.memory import InMemoryStore, in_memory_uow_factory
from adapters.sqlalchemy.engine import EngineOptions, SqlUnitsOfWork, create_engine, ping
from application.limits import RateLimiter
from application.ports import Clock, PostsCache
from domain.ports import UnitOfWorkFactory
from entrypoints.settings import Settings

MEMORY_URL = "memory://"
# A Redis that does not answer within this is treated as down: get-posts goes to the database.
REDIS_TIMEOUT_SECONDS = 0.5
# Connections MySQL allows by default (max_connections) minus room for admin and migrations.
MYSQL_CONNECTION_BUDGET = 120
# One writes at a time (the process queues its writers); the others read beside it.
SQLITE_POOL_SIZE = 5


async def _nothing() -> None:
    return None


@attrs.frozen
class Storage:
    uow: UnitOfWorkFactory
    ping: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]
    # Forgets everything when the process ends (memory://).
    ephemeral: bool = False
    # The SQL engine, when there is one: its pool is what operators and tests inspect.
    engine: AsyncEngine | None = None
    # How many units of work wait in line for a connection of the engine's full pool.
    waiting: Callable[[], int] = lambda: 0


@attrs.frozen
class Cache:
    cache: PostsCache
    ping: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]
    # The Redis client, when there is one: tracing instruments it.
    redis: RedisClient | None = None


def engine_options(settings: Settings) -> EngineOptions:
    """Each worker process has its own pool. MySQL: the pools of all workers stay within
    MYSQL_CONNECTION_BUDGET (HEXPOST_WORKERS=1: 20; 8 workers: 15 each). SQLite: SQLITE_POOL_SIZE,
    a thread each. No overflow: a connection is kept once opened, since under load a pool that
    closes and reopens connections spends its time connecting; requests beyond the pool wait their
    turn."""
    if settings.database_url.startswith("sqlite"):
        return EngineOptions(pool_size=SQLITE_POOL_SIZE, max_overflow=0)
    pool_size = max(2, min(20, MYSQL_CONNECTION_BUDGET // settings.workers))
    return EngineOptions(pool_size=pool_size, max_overflow=0)


def open_storage(settings: Settings, clock: Clock) -> Storage:
    if settings.database_url == MEMORY_URL:
        return Storage(in_memory_uow_factory(InMemoryStore(), clock), _nothing, _nothing, ephemeral=True)
    options = engine_options(settings)
    engine = create_engine(settings.database_url, options)
    units = SqlUnitsOfWork(engine, options, clock)
    return Storage(
        units,
        lambda: ping(engine, options.operation_timeout_seconds),
        engine.dispose,
        engine=engine,
        waiting=lambda: units.waiting,
    )


def open_cache(settings: Settings) -> Cache:
    if settings.cache_url == MEMORY_URL:
        in_process = InProcessPostsCache(
            settings.cache_ttl_seconds, max_entry_bytes=settings.cache_max_entry_bytes
        )
        return Cache(in_process, _nothing, _nothing)
    client = create_client(settings.cache_url, timeout_seconds=REDIS_TIMEOUT_SECONDS)
    redis_cache = RedisPostsCache(
        client,
        settings.cache_ttl_seconds,
        prefix=settings.cache_key_prefix,
        max_entry_bytes=settings.cache_max_entry_bytes,
    )
    return Cache(redis_cache, redis_cache.ping, redis_cache.close, redis=client)


@attrs.frozen
class Limiter:
    limiter: RateLimiter
    close: Callable[[], Awaitable[None]]


def open_limiter(settings: Settings) -> Limiter:
    """Counters in the process with memory://, else in the cache's Redis (one limit for every
    process), falling back to the process while Redis is down."""
    if settings.cache_url == MEMORY_URL:
        return Limiter(in_process_limiter(), _nothing)
    client = create_client(settings.cache_url, timeout_seconds=REDIS_TIMEOUT_SECONDS)
    storage = redis_storage(client, settings.cache_url, settings.cache_key_prefix, REDIS_TIMEOUT_SECONDS)

    async def close() -> None:
        await close_redis_storage(storage)
        await client.aclose()

    return Limiter(FallbackRateLimiter(LimitsRateLimiter(storage), in_process_limiter()), close)
