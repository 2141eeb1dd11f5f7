from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Sequence

from cachetools import TTLCache

from application.ports import CacheHit, CacheLookup, CacheMiss, PostsCache

_Entry = tuple[str, bytes]


def _entry_size(entry: _Entry) -> int:
    return len(entry[1])


class InProcessPostsCache(PostsCache):
    """The `memory://` cache: right for one server process. Entries expire after `ttl_seconds` and
    the least recently used go first once the payloads add up to `max_bytes`; an entry over
    `max_entry_bytes` is not kept."""

    def __init__(
        self,
        ttl_seconds: float,
        max_bytes: int = 256 * 1024 * 1024,
        timer: Callable[[], float] = time.monotonic,
        max_entry_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self._max_entry_bytes = max_entry_bytes
        self._entries: TTLCache[tuple[int, str], _Entry] = TTLCache(
            maxsize=max_bytes, ttl=ttl_seconds, timer=timer, getsizeof=_entry_size
        )
        # Versions come from one counter that only grows, so a version is never handed out twice.
        self._versions: dict[int, str] = {}
        self._counter = itertools.count(1)

    async def lookup(self, user_id: int, view: str) -> CacheLookup:
        return self._current(user_id, view, self._versions.get(user_id, "0"))

    async def lookup_all(self, user_id: int, views: Sequence[str]) -> Sequence[CacheLookup]:
        version = self._versions.get(user_id, "0")
        return [self._current(user_id, view, version) for view in views]

    def _current(self, user_id: int, view: str, version: str) -> CacheLookup:
        # Indexing, not `get`: cachetools' `get` takes its timer twice (a lookup's biggest cost).
        try:
            entry = self._entries[(user_id, view)]
        except KeyError:
            return CacheMiss(version)
        if entry[0] == version:
            return CacheHit(entry[1], version)
        return CacheMiss(version)

    async def fill(self, user_id: int, view: str, version: str, payload: bytes) -> None:
        if self._versions.get(user_id, "0") != version or len(payload) > self._max_entry_bytes:
            return
        # An entry larger than the whole cache is not kept: that list is served uncached.
        with contextlib.suppress(ValueError):
            self._entries[(user_id, view)] = (version, payload)

    async def invalidate(self, user_id: int) -> None:
        self._versions[user_id] = str(next(self._counter))
