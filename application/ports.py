"""What the use cases need from the outside world beyond storage: a cache, tokens, password hashing
and the time. The storage ports stay with the domain (`domain.ports`). Adapters subclass these."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import attrs

from domain.users import Password


@attrs.frozen
class CacheHit:
    """The stored rendering, current for the user at `version`: a caller that judges the payload out
    of date (a session check past its recheck time) may replace it by a fill against `version`."""

    payload: bytes
    version: str


@attrs.frozen
class CacheMiss:
    """Nothing current is stored; a fill made against `version` is served until the next invalidation."""

    version: str


@attrs.frozen
class CacheOutage:
    """The cache could not be asked: serve from the database and do not fill."""

    reason: str


CacheLookup = CacheHit | CacheMiss | CacheOutage


class PostsCache(Protocol):
    """Serialized post lists per user and view, invalidated by bumping the user's version. A view
    names one wire format and its version (`canonical.1`), so a process that renders differently
    never serves, or is served, another format's bytes from a shared cache.

    A fill made against an older version than the current one is never served, which is what keeps a
    reader that loaded the list before a write from resurrecting it after the write's invalidation.

    An invalidation that fails is kept: the cache sends it before this process serves anything from
    the cache again, and retries it meanwhile, so that a write is never hidden by an entry from
    before it once the cache is back.
    """

    async def lookup(self, user_id: int, view: str) -> CacheLookup:
        """Never raises: an unreachable cache is a CacheOutage."""
        ...

    async def lookup_all(self, user_id: int, views: Sequence[str]) -> Sequence[CacheLookup]:
        """Several views of one user at once (one round trip to a shared cache), in the order asked.
        Never raises."""
        ...

    async def fill(self, user_id: int, view: str, version: str, payload: bytes) -> None:
        """Raises CacheUnavailable."""
        ...

    async def invalidate(self, user_id: int) -> None:
        """Raises CacheUnavailable, and then keeps the invalidation (see the class)."""
        ...


class PasswordHasher(Protocol):
    async def hash(self, password: Password) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """With no hash, spends the same work on a dummy one and returns False, so that an unknown
        account cannot be told from a wrong password by timing."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a hash that verified was made with other parameters than this hasher's."""
        ...


@attrs.frozen
class IssuedToken:
    value: str = attrs.field(repr=False)
    expires_in: int


@attrs.frozen
class TokenSubject:
    """Whom a verified token names: a user, in one of their sessions."""

    user_id: int
    session_id: str


class TokenService(Protocol):
    def issue(self, user_id: int, session_id: str) -> IssuedToken: ...

    def verify(self, token: str) -> TokenSubject:
        """Only that the token is well-formed, signed and current: whether its session is still
        alive is the store's to say. Raises NotAuthenticated."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC."""
        ...
