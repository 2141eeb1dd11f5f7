from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from application.errors import CacheUnavailable
from application.ports import CacheHit, CacheLookup, CacheMiss, CacheOutage, Clock, PostsCache, TokenService
from domain.errors import NotAuthenticated
from domain.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)


@attrs.frozen
class Caller:
    """Who a request acts for, resolved once at the edge before any use case runs: a user, in one of
    their live sessions."""

    user_id: int
    session_id: str


SESSION_VIEW_PREFIX = "session:"


def session_view(session_id: str) -> str:
    """The cache entry vouching that a session was alive. The user's next invalidation (a write of
    theirs, any session of theirs ending) drops it along with their cached lists."""
    return SESSION_VIEW_PREFIX + session_id


def is_session_view(view: str) -> bool:
    return view.startswith(SESSION_VIEW_PREFIX)


class ResolveCaller:
    """A token names a caller while it verifies, its user is in the store and its session is alive,
    also when this process verified the token before; otherwise the request is not authenticated,
    whatever route it is for.

    The store is the truth. The cache vouches for a session the store showed alive, until the user's
    next invalidation and for at most `recheck_seconds` (never past the session's expiry): ending a
    session through the service is honoured by every process from the next request on, and a user
    removed straight from the database within `recheck_seconds`. A cache that lost its entries, or is
    down, only sends the check to the store. Requests of one session that find no vouching entry at
    the same moment (it has just lapsed, under load) share one lookup in the store, when they saw the
    same cache version."""

    def __init__(
        self,
        tokens: TokenService,
        uow: UnitOfWorkFactory,
        cache: PostsCache,
        clock: Clock,
        recheck_seconds: float,
    ) -> None:
        self._tokens = tokens
        self._uow = uow
        self._cache = cache
        self._clock = clock
        self._recheck = timedelta(seconds=recheck_seconds)
        self._checking: dict[tuple[Caller, str], asyncio.Task[None]] = {}

    async def execute(self, token: str) -> Caller:
        caller, _ = await self._resolve(token, ())
        return caller

    async def with_posts(self, token: str, view: str) -> tuple[Caller, CacheLookup]:
        """The caller, and the cache's answer for `view` of their posts, fetched in the same round
        trip as the session check."""
        caller, (posts,) = await self._resolve(token, (view,))
        return caller, posts

    async def _resolve(self, token: str, views: Sequence[str]) -> tuple[Caller, Sequence[CacheLookup]]:
        subject = self._tokens.verify(token)
        caller = Caller(subject.user_id, subject.session_id)
        vouching = session_view(caller.session_id)
        session, *posts = await self._cache.lookup_all(caller.user_id, (vouching, *views))
        now = self._clock.now()
        if isinstance(session, CacheHit) and now.timestamp() < float(session.payload):
            return caller, posts
        if isinstance(session, CacheOutage):
            await self._check(caller, session, now)
            return caller, posts
        # Shared only under the same cache version: a check that began before the session ended
        # (which bumps the version before it answers) is never taken for one made after.
        key = (caller, session.version)
        check = self._checking.get(key)
        if check is None:
            check = asyncio.ensure_future(self._check(caller, session, now))
            self._checking[key] = check
            check.add_done_callback(lambda done: self._checked(key, done))
        # Shielded: a request that goes away does not cancel the lookup others wait for.
        await asyncio.shield(check)
        return caller, posts

    async def _check(self, caller: Caller, session: CacheLookup, now: datetime) -> None:
        async with self._uow() as uow:
            user = await uow.users.get(caller.user_id)
            stored = await uow.sessions.get(caller.user_id, caller.session_id)
        if user is None or stored is None or not stored.alive_at(now):
            raise NotAuthenticated
        # A vouch past its recheck time is replaced too: it stays in the cache (for the cache's TTL)
        # until the user's next invalidation, and must not send every later request to the store.
        if isinstance(session, CacheHit | CacheMiss):
            until = min(stored.refresh_expires_at, now + self._recheck).timestamp()
            try:
                await self._cache.fill(
                    caller.user_id, session_view(caller.session_id), session.version, str(until).encode()
                )
            except CacheUnavailable:
                log.warning("cache unavailable: session check for user %s not cached", caller.user_id)

    def _checked(self, key: tuple[Caller, str], done: asyncio.Task[None]) -> None:
        if self._checking.get(key) is done:
            del self._checking[key]
        if not done.cancelled():
            # Retrieved, so that an error nobody waited for any more is not reported as lost.
            done.exception()
