"""Sessions: starting one at sign-in, refreshing it with rotation, ending it, and listing them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import attrs

from application.callers import Caller
from application.errors import CacheUnavailable
from application.limits import RateLimit
from application.ports import Clock, IssuedToken, PostsCache, TokenService
from domain.errors import InvalidRefreshToken, SessionNotFound
from domain.ports import SessionRepository, UnitOfWorkFactory
from domain.sessions import RefreshToken, Session, new_session_id

log = logging.getLogger(__name__)


@attrs.frozen
class IssuedRefreshToken:
    value: str = attrs.field(repr=False)
    expires_in: int


@attrs.frozen
class SignedIn:
    caller: Caller
    access: IssuedToken
    refresh: IssuedRefreshToken


class SessionStarter:
    """What starting or refreshing a session issues: an access token naming the session, and a
    refresh token living `refresh_ttl_seconds` from now. Not a use case: the use cases that sign a
    user in share it."""

    def __init__(self, tokens: TokenService, clock: Clock, refresh_ttl_seconds: int) -> None:
        self._tokens = tokens
        self._clock = clock
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)

    def now(self) -> datetime:
        return self._clock.now()

    async def start(self, sessions: SessionRepository, user_id: int) -> SignedIn:
        """Adds the session to the unit of work `sessions` belongs to; the caller commits."""
        now = self._clock.now()
        refresh = RefreshToken.issue(user_id, new_session_id(), 0)
        await sessions.add(
            Session(refresh.session_id, user_id, now, now, refresh.hash, 0, now + self.refresh_ttl)
        )
        return self.signed_in(refresh)

    def signed_in(self, refresh: RefreshToken) -> SignedIn:
        caller = Caller(refresh.user_id, refresh.session_id)
        return SignedIn(
            caller,
            self._tokens.issue(caller.user_id, caller.session_id),
            IssuedRefreshToken(refresh.value, int(self.refresh_ttl.total_seconds())),
        )


async def forget_sessions(cache: PostsCache, user_id: int) -> None:
    """After a session of the user ended in the store: the cache must stop vouching for it."""
    try:
        await cache.invalidate(user_id)
    except CacheUnavailable:
        # The adapter keeps the invalidation and replays it before it answers from Redis again.
        log.warning("cache unavailable: invalidation for user %s deferred", user_id)


class RefreshSession:
    """A refresh token works once: it is exchanged for a new access token and its successor. One that
    was already used ends its session, successor included (someone else may hold a copy). Of two
    concurrent refreshes with one token exactly one wins, and the other is a reuse like any other.
    Refreshes are limited per client address."""

    def __init__(
        self, uow: UnitOfWorkFactory, starter: SessionStarter, cache: PostsCache, per_address: RateLimit
    ) -> None:
        self._uow = uow
        self._starter = starter
        self._cache = cache
        self._per_address = per_address

    async def execute(self, token: str, address: str) -> SignedIn:
        await self._per_address.count(address)
        presented = RefreshToken.parse(token)
        if presented is None:
            raise InvalidRefreshToken
        now = self._starter.now()
        async with self._uow() as uow:
            session = await uow.sessions.get(presented.user_id, presented.session_id)
            if session is None or not session.alive_at(now):
                raise InvalidRefreshToken
            current = session.refresh_generation
            if presented.generation > current or (
                presented.generation == current and not presented.matches(session.refresh_hash)
            ):
                # Never issued: a guess or a forgery, which must not be able to end the session.
                raise InvalidRefreshToken
            if presented.generation == current:
                successor = RefreshToken.issue(session.user_id, session.id, current + 1)
                expires_at = now + self._starter.refresh_ttl
                if await uow.sessions.rotate(
                    session.user_id, session.id, current, successor.hash, expires_at, now
                ):
                    await uow.commit()
                    return self._starter.signed_in(successor)
            await uow.sessions.end(session.user_id, session.id, now)
            await uow.commit()
        log.warning("refresh token reused: session of user %s ended", presented.user_id)
        await forget_sessions(self._cache, presented.user_id)
        raise InvalidRefreshToken


@attrs.frozen
class SessionView:
    id: str
    created_at: datetime
    last_used_at: datetime
    current: bool


class ListSessions:
    """The caller's live sessions, most recently used first, the current one marked."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def execute(self, caller: Caller) -> list[SessionView]:
        async with self._uow() as uow:
            alive = await uow.sessions.list_alive(caller.user_id, self._clock.now())
        return [SessionView(s.id, s.created_at, s.last_used_at, s.id == caller.session_id) for s in alive]


class EndSession:
    """The caller ends one of their sessions (logout, when it is the current one); someone else's
    session, or an ended one, is not found."""

    def __init__(self, uow: UnitOfWorkFactory, cache: PostsCache, clock: Clock) -> None:
        self._uow = uow
        self._cache = cache
        self._clock = clock

    async def execute(self, caller: Caller, session_id: str) -> None:
        async with self._uow() as uow:
            ended = await uow.sessions.end(caller.user_id, session_id, self._clock.now())
            await uow.commit()
        if not ended:
            raise SessionNotFound
        await forget_sessions(self._cache, caller.user_id)


class EndAllSessions:
    """Log out everywhere: every session of the caller ends, the current one included."""

    def __init__(self, uow: UnitOfWorkFactory, cache: PostsCache, clock: Clock) -> None:
        self._uow = uow
        self._cache = cache
        self._clock = clock

    async def execute(self, caller: Caller) -> None:
        async with self._uow() as uow:
            await uow.sessions.end_all(caller.user_id, self._clock.now())
            await uow.commit()
        await forget_sessions(self._cache, caller.user_id)
