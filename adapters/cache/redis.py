from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from domain.errors import CacheUnavailable
from domain.ports import CachedPosts, PostsCache

log = logging.getLogger(__name__)


def create_client(url: str, timeout_seconds: float) -> Redis:
    """A client that gives up quickly: one retry (a pooled connection may have died with a Redis
    restart), then the caller falls back to the database."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), retries=1),
        health_check_interval=30,
    )


class RedisPostsCache(PostsCache):
    """The cache shared by several server processes.

    Per user, a version counter (no expiry, so it never goes back) and one entry per view holding
    `<version>:<payload>`. An entry counts only while its version is the current one, so a fill
    that raced with a write is never served; invalidation is a single INCR and a lookup one MGET.

    When Redis fails, the cache stays out of the way for `cooldown_seconds` instead of making every
    request wait for a timeout, and invalidations that could not be sent are kept and replayed
    before this process uses the cache again.
    """

    def __init__(
        self,
        client: Redis,
        ttl_seconds: int,
        prefix: str = "hexpost:",
        cooldown_seconds: float = 1.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl_ms = int(ttl_seconds * 1000)
        self._prefix = prefix
        self._cooldown = cooldown_seconds
        self._timer = timer
        self._down_until = 0.0
        # user id -> how many invalidations were asked for, so a replay that finishes after a
        # newer request came in does not drop that newer one.
        self._pending: dict[int, int] = {}

    def _version_key(self, user_id: int) -> str:
        return f"{self._prefix}{{u{user_id}}}:version"

    def _entry_key(self, user_id: int, view: str) -> str:
        return f"{self._prefix}{{u{user_id}}}:posts:{view}"

    async def lookup(self, user_id: int, view: str) -> CachedPosts:
        async with self._available():
            version, entry = await self._client.mget(
                self._version_key(user_id), self._entry_key(user_id, view)
            )
        current = version.decode() if isinstance(version, bytes) else "0"
        if isinstance(entry, bytes):
            stored_version, _, payload = entry.partition(b":")
            if stored_version.decode() == current:
                return CachedPosts(payload, current)
        return CachedPosts(None, current)

    async def fill(self, user_id: int, view: str, version: str, payload: bytes) -> None:
        async with self._available():
            await self._client.set(
                self._entry_key(user_id, view), version.encode() + b":" + payload, px=self._ttl_ms
            )

    async def invalidate(self, user_id: int) -> None:
        self._pending[user_id] = self._pending.get(user_id, 0) + 1
        async with self._available():
            pass

    @asynccontextmanager
    async def _available(self) -> AsyncIterator[None]:
        """Replays pending invalidations first; Redis failures become CacheUnavailable."""
        if self._timer() < self._down_until:
            raise CacheUnavailable("cache cooling down after a failure")
        try:
            await self._replay_pending()
            yield
        except (RedisError, OSError, TimeoutError) as exc:
            self._down_until = self._timer() + self._cooldown
            log.warning("redis unavailable: %r", exc)
            raise CacheUnavailable(type(exc).__name__) from exc

    async def _replay_pending(self) -> None:
        if not self._pending:
            return
        sent = dict(self._pending)
        async with self._client.pipeline(transaction=False) as pipe:
            for user_id in sent:
                pipe.incr(self._version_key(user_id))
            await pipe.execute()
        for user_id, count in sent.items():
            if self._pending.get(user_id) == count:
                del self._pending[user_id]

    async def ping(self) -> None:
        """Raises CacheUnavailable."""
        async with self._available():
            await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()
