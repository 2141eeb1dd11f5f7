"""Picks and opens the storage and cache backends that the configuration names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from adapters.cache.memory import InProcessPostsCache
from adapters.cache.redis import RedisPostsCache, create_client
from adapters.memory import InMemoryStore, in_memory_uow_factory
from adapters.sqlalchemy.engine import EngineOptions, create_engine, create_sessionmaker, ping
from adapters.sqlalchemy.uow import SqlUnitOfWork
from domain.ports import PostsCache, UnitOfWorkFactory
from entrypoints.settings import Settings

MEMORY_URL = "memory://"


async def _nothing() -> None:
    return None


@attrs.frozen
class Storage:
    uow: UnitOfWorkFactory
    ping: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]
    # Forgets everything when the process ends (memory://).
    ephemeral: bool = False


@attrs.frozen
class Cache:
    cache: PostsCache
    ping: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]]


def engine_options(settings: Settings) -> EngineOptions:
    # Each worker process has its own pool; keep the sum well under MySQL's default 151
    # connections.
    per_worker = max(2, min(10, 100 // settings.workers))
    return EngineOptions(pool_size=per_worker, max_overflow=per_worker)


def open_storage(settings: Settings) -> Storage:
    if settings.database_url == MEMORY_URL:
        return Storage(in_memory_uow_factory(InMemoryStore()), _nothing, _nothing, ephemeral=True)
    engine = create_engine(settings.database_url, engine_options(settings))
    sessions = create_sessionmaker(engine)
    return Storage(lambda: SqlUnitOfWork(sessions), lambda: ping(engine), engine.dispose)


def open_cache(settings: Settings) -> Cache:
    if settings.cache_url == MEMORY_URL:
        return Cache(InProcessPostsCache(settings.cache_ttl_seconds), _nothing, _nothing)
    redis_cache = RedisPostsCache(
        create_client(settings.cache_url, timeout_seconds=0.5), settings.cache_ttl_seconds
    )
    return Cache(redis_cache, redis_cache.ping, redis_cache.close)
