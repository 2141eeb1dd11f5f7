"""What a server process opens and must close: the store (an engine and its pool), the Redis clients
of the cache and of the rate limits, the hashing threads. `bootstrap()` builds them from the
configuration, in one place; `Infrastructure.aclose()` closes them, last opened first."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import argon2
import attrs
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.cache.memory import InProcessPostsCache
from adapters.limits import (
    FallbackRateLimiter,
    LimitsRateLimiter,
    close_redis_storage,
    in_process_limiter,
    redis_storage,
)
from adapters.memory import InMemoryStore, in_memory_uow_factory
from adapters.passwords import Argon2PasswordHasher
from adapters.sqlalchemy.engine import EngineOptions, SqlUnitsOfWork, create_engine
from application.limits import RateLimiter
from application.ports import Clock, PostsCache
from domain.ports import UnitOfWorkFactory
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from adapters.cache.redis import RedisClient

MEMORY_URL = "memory://"
# A Redis that does not answer within this is treated as down: get-posts goes to the database.
REDIS_TIMEOUT_SECONDS = 0.5
# Connections MySQL allows by default (max_connections) minus room for admin and migrations.
MYSQL_CONNECTION_BUDGET = 120
# One writes at a time (the process queues its writers); the others read beside it.
SQLITE_POOL_SIZE = 5

# Raises when its dependency is unreachable.
Probe = Callable[[], Awaitable[None]]


async def _always_ready() -> None:
    """The probe of what lives in the process."""


@attrs.frozen
class Infrastructure:
    uow: UnitOfWorkFactory
    posts_cache: PostsCache
    limiter: RateLimiter
    password_hasher: Argon2PasswordHasher
    # What readiness asks: the store and the cache.
    probes: Mapping[str, Probe]
    # The Redis client of the cache, when there is one: tracing instruments it.
    redis: RedisClient | None
    _closing: AsyncExitStack

    @property
    def sql(self) -> SqlUnitsOfWork | None:
        """The SQL store, when the configuration names one: metrics watch its pool and queue."""
        return self.uow if isinstance(self.uow, SqlUnitsOfWork) else None

    @property
    def engine(self) -> AsyncEngine | None:
        return None if self.sql is None else self.sql.engine

    async def aclose(self) -> None:
        await self._closing.aclose()


def bootstrap(settings: Settings, clock: Clock, argon2_parameters: argon2.PasswordHasher) -> Infrastructure:
    closing = AsyncExitStack()
    uow = open_store(settings, clock, closing)
    if settings.cache_url == MEMORY_URL:
        posts_cache: PostsCache = InProcessPostsCache(
            settings.cache_ttl_seconds, max_entry_bytes=settings.cache_max_entry_bytes
        )
        redis, cache_probe = None, _always_ready
    else:
        # Imported only here: redis-py (and the OpenTelemetry API it pulls in) is ~8 MB of a process
        # that the embedded default never needs.
        from adapters.cache.redis import RedisPostsCache, create_client

        redis = create_client(settings.cache_url, timeout_seconds=REDIS_TIMEOUT_SECONDS)
        redis_cache = RedisPostsCache(
            redis,
            settings.cache_ttl_seconds,
            prefix=settings.cache_key_prefix,
            max_entry_bytes=settings.cache_max_entry_bytes,
        )
        closing.push_async_callback(redis_cache.close)
        posts_cache, cache_probe = redis_cache, redis_cache.ping
    hasher = Argon2PasswordHasher(argon2_parameters, hashing_threads(settings, usable_cores()))
    closing.callback(hasher.close)
    return Infrastructure(
        uow=uow,
        posts_cache=posts_cache,
        limiter=open_limiter(settings, closing),
        password_hasher=hasher,
        probes={
            "database": uow.ping if isinstance(uow, SqlUnitsOfWork) else _always_ready,
            "cache": cache_probe,
        },
        redis=redis,
        closing=closing,
    )


def open_store(settings: Settings, clock: Clock, closing: AsyncExitStack) -> UnitOfWorkFactory:
    """The units of work over the configured store; `closing` disposes of its engine."""
    if settings.database_url == MEMORY_URL:
        return in_memory_uow_factory(InMemoryStore(), clock)
    options = engine_options(settings)
    engine = create_engine(settings.database_url, options)
    closing.push_async_callback(engine.dispose)
    return SqlUnitsOfWork(engine, options, clock)


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


def open_limiter(settings: Settings, closing: AsyncExitStack) -> RateLimiter:
    """Counters in the process with memory://, else in the cache's Redis (one limit for every
    process), falling back to the process while Redis is down."""
    if settings.cache_url == MEMORY_URL:
        return in_process_limiter()
    from adapters.cache.redis import create_client

    client = create_client(settings.cache_url, timeout_seconds=REDIS_TIMEOUT_SECONDS)
    closing.push_async_callback(client.aclose)
    storage = redis_storage(client, settings.cache_url, settings.cache_key_prefix, REDIS_TIMEOUT_SECONDS)
    closing.push_async_callback(close_redis_storage, storage)
    return FallbackRateLimiter(LimitsRateLimiter(storage), in_process_limiter())


def usable_cores() -> int:
    """The cores this process may run on (its affinity: a server pinned with taskset has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def hashing_threads(settings: Settings, cores: int) -> int:
    """HEXPOST_ARGON2_THREADS, or one fewer than the usable cores: hashing never takes them all."""
    if settings.argon2_threads is not None:
        return settings.argon2_threads
    return max(1, cores - 1)
