from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from adapters.cache.urls import ClusterUrl
from application.errors import CacheUnavailable
from application.ports import CacheHit, CacheLookup, CacheMiss, CacheOutage, PostsCache

log = logging.getLogger(__name__)


RedisClient = Redis | RedisCluster
# What a failing Redis or Redis Cluster raises; the cluster client's own errors are not RedisErrors.
REDIS_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError)


# Connections to Redis per process (per node of a cluster). RedisPostsCache lets as many requests use
# Redis at once and queues the others, so the client's pool is never found empty.
MAX_CONNECTIONS = 128


def create_client(url: str, timeout_seconds: float, max_connections: int = MAX_CONNECTIONS) -> RedisClient:
    """A client that gives up quickly: one immediate retry on a broken connection (a pooled one may
    have died with a Redis restart), none on a timeout, then the caller falls back to the database."""
    retry = Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,))
    cluster = ClusterUrl.parse(url)
    if cluster is None:
        return Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=retry,
            health_check_interval=30,
            max_connections=max_connections,
        )
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.nodes],
        username=cluster.username,
        password=cluster.password,
        ssl=cluster.tls,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=retry,
        health_check_interval=30,
        max_connections=max_connections,
    )


# The keys of one lookup, and where its values go.
_Lookup = tuple[Sequence[str], asyncio.Future[Sequence[object]]]


def _new_version() -> str:
    return secrets.token_hex(8)


def _current(entry: object, version: bytes) -> CacheLookup:
    if isinstance(entry, bytes):
        stored_version, _, payload = entry.partition(b":")
        if stored_version == version:
            return CacheHit(payload, version.decode())
    return CacheMiss(version.decode())


class RedisPostsCache(PostsCache):
    """The cache shared by several server processes.

    Per user, a version key (no expiry) and one entry per view holding `<version>:<payload>`. An
    entry counts only while its version is the current one, so a fill that raced with a write is
    never served. Versions are random tokens, never a counter: a version key lost to a restart or
    an eviction cannot come back with an old value and revive an entry written under it.

    At most `max_connections` requests talk to Redis at once (the client's pool must be as large);
    the others queue for up to `queue_timeout_seconds`. A full pool is back-pressure: a request that
    waited too long goes to the database without the cache, and Redis is not held to be down. Only
    a failure talking to Redis (refused, reset, no answer within the client's socket timeout)
    makes the cache stay out of the way for `cooldown_seconds`, instead of making every request
    wait for a timeout. Invalidations that could not be sent are kept, retried in the background,
    and sent first by every later use of Redis (`_send_pending`).

    Entries over `max_entry_bytes` are not stored: reading one back could take longer than the
    socket timeout and make a healthy Redis look down.

    Lookups asked for in one turn of the event loop go to Redis together, up to `MAX_BATCH` at a
    time: one MGET of all their keys (on a cluster, one per slot), one round trip and one
    connection slot for all of them. Under load most requests arrive in a turn with
    others, and a lookup of its own cost more of the process than the rest of a cached get-posts.
    """

    MAX_BATCH = 64

    def __init__(
        self,
        client: RedisClient,
        ttl_seconds: float,
        prefix: str = "hexpost:",
        cooldown_seconds: float = 1.0,
        timer: Callable[[], float] = time.monotonic,
        max_connections: int = MAX_CONNECTIONS,
        queue_timeout_seconds: float = 2.0,
        max_entry_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(max_connections)
        self._queue_timeout = queue_timeout_seconds
        self._max_entry_bytes = max_entry_bytes
        self._ttl_ms = int(ttl_seconds * 1000)
        self._prefix = prefix
        self._cooldown = cooldown_seconds
        self._timer = timer
        self._down_until = 0.0
        # user id -> how many invalidations were asked for, so a replay that finishes after a
        # newer request came in does not drop that newer one.
        self._pending: dict[int, int] = {}
        self._replayer: asyncio.Task[None] | None = None
        self._lookups: list[_Lookup] = []
        self._batches: set[asyncio.Task[None]] = set()

    def _version_key(self, user_id: int) -> str:
        # The hash tag keeps a user's keys in one slot of a Redis cluster.
        return f"{self._prefix}{{u{user_id}}}:version"

    def _entry_key(self, user_id: int, view: str) -> str:
        return f"{self._prefix}{{u{user_id}}}:posts:{view}"

    async def lookup(self, user_id: int, view: str) -> CacheLookup:
        (found,) = await self.lookup_all(user_id, (view,))
        return found

    async def lookup_all(self, user_id: int, views: Sequence[str]) -> Sequence[CacheLookup]:
        keys = (self._version_key(user_id), *(self._entry_key(user_id, view) for view in views))
        try:
            version, *entries = await self._batched_mget(keys)
            if not isinstance(version, bytes):
                async with self._available():
                    version = await self._start_version(user_id)
        except CacheUnavailable as exc:
            return [CacheOutage(str(exc))] * len(views)
        return [_current(entry, version) for entry in entries]

    def _batched_mget(self, keys: Sequence[str]) -> asyncio.Future[Sequence[object]]:
        """The values of `keys`, fetched with the other lookups asked for in this turn of the loop."""
        answer: asyncio.Future[Sequence[object]] = asyncio.get_running_loop().create_future()
        self._lookups.append((keys, answer))
        if len(self._lookups) == 1:
            # A task's first step comes after everything else of this turn: by then every lookup
            # of the turn is in.
            self._track(self._send_lookups())
        return answer

    async def _send_lookups(self) -> None:
        lookups, self._lookups = self._lookups, []
        for start in range(self.MAX_BATCH, len(lookups), self.MAX_BATCH):
            self._track(self._mget_all(lookups[start : start + self.MAX_BATCH]))
        await self._mget_all(lookups[: self.MAX_BATCH])

    def _track(self, sending: Coroutine[None, None, None]) -> None:
        batch = asyncio.ensure_future(sending)
        self._batches.add(batch)
        batch.add_done_callback(self._batches.discard)

    async def _mget_all(self, lookups: list[_Lookup]) -> None:
        """Answers each of `lookups` (one whose request went away is skipped): all with the same
        failure when Redis fails them."""
        try:
            async with self._available():
                await self._send_pending()
                found = await self._mget_each([keys for keys, _ in lookups])
        except CacheUnavailable as exc:
            for _, answer in lookups:
                if not answer.done():
                    answer.set_exception(CacheUnavailable(str(exc)))
            return
        except BaseException:
            for _, answer in lookups:
                answer.cancel()
            raise
        for (_, answer), values in zip(lookups, found, strict=True):
            if not answer.done():
                answer.set_result(values)

    async def _mget_each(self, key_lists: list[Sequence[str]]) -> list[Sequence[object]]:
        keys = [key for each in key_lists for key in each]
        if isinstance(self._client, RedisCluster):
            # An MGET per slot: a user's keys share theirs (the hash tag), so each user's are still
            # read at one moment.
            values = await self._client.mget_nonatomic(keys)
        else:
            values = await self._client.mget(keys)
        found: list[Sequence[object]] = []
        start = 0
        for each in key_lists:
            found.append(values[start : start + len(each)])
            start += len(each)
        return found

    async def _start_version(self, user_id: int) -> bytes:
        """The first version of a user without one; if another process got there first, theirs."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(self._version_key(user_id), _new_version(), nx=True)
            pipe.get(self._version_key(user_id))
            _, version = await pipe.execute()
        if not isinstance(version, bytes):
            raise CacheUnavailable("the version key vanished while it was being created")
        return version

    async def fill(self, user_id: int, view: str, version: str, payload: bytes) -> None:
        if len(payload) > self._max_entry_bytes:
            return
        async with self._available():
            await self._send_pending()
            await self._client.set(
                self._entry_key(user_id, view), version.encode() + b":" + payload, px=self._ttl_ms
            )

    async def invalidate(self, user_id: int) -> None:
        self._pending[user_id] = self._pending.get(user_id, 0) + 1
        try:
            async with self._available():
                # This invalidation goes out with any kept from earlier failures.
                await self._send_pending()
        except CacheUnavailable:
            self._retry_in_background()
            raise

    @property
    def cooling_down(self) -> bool:
        """Whether a failure talking to Redis keeps the cache out of the way right now."""
        return self._timer() < self._down_until

    @asynccontextmanager
    async def _available(self) -> AsyncIterator[None]:
        """Waits for a connection slot; Redis failures become CacheUnavailable, and keep Redis out of
        the way for a cool-down."""
        if self.cooling_down:
            raise CacheUnavailable("cache cooling down after a failure")
        if not self._slots.locked():
            # A free slot is taken at once: no deadline to set up and cancel on the hot path.
            await self._slots.acquire()
        else:
            try:
                async with asyncio.timeout(self._queue_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise CacheUnavailable("no connection to Redis came free in time") from None
        try:
            # Redis may have failed someone else while this request queued.
            if self.cooling_down:
                raise CacheUnavailable("cache cooling down after a failure")
            yield
        except REDIS_FAILURES as exc:
            self._down_until = self._timer() + self._cooldown
            log.warning("redis unavailable: %r", exc)
            raise CacheUnavailable(type(exc).__name__) from exc
        finally:
            self._slots.release()

    async def _send_pending(self) -> None:
        """Sends the invalidations kept from failures. Every use of Redis begins with this step, so
        this process never reads an entry that one of its own kept invalidations has made stale."""
        if not self._pending:
            return
        sent = dict(self._pending)
        async with self._client.pipeline(transaction=False) as pipe:
            for user_id in sent:
                pipe.set(self._version_key(user_id), _new_version())
            await pipe.execute()
        for user_id, count in sent.items():
            if self._pending.get(user_id) == count:
                del self._pending[user_id]

    def _retry_in_background(self) -> None:
        """Other processes may read from Redis before this one needs it again: send what is
        pending as soon as Redis answers, not at this process's next request."""
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.get_running_loop().create_task(self._replay_until_sent())

    async def _replay_until_sent(self) -> None:
        while self._pending:
            await asyncio.sleep(max(self._cooldown, self._down_until - self._timer()))
            with contextlib.suppress(CacheUnavailable):
                async with self._available():
                    await self._send_pending()

    async def ping(self) -> None:
        """Raises CacheUnavailable."""
        async with self._available():
            await self._send_pending()
            await self._client.ping()

    async def close(self) -> None:
        await asyncio.gather(*self._batches, return_exceptions=True)
        if self._replayer is not None:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer
        # A last attempt: once this process is gone, nobody else knows these users' entries are stale.
        with contextlib.suppress(*REDIS_FAILURES):
            await self._send_pending()
        await self._client.aclose()
