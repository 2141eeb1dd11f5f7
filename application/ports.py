"""What the use cases need from the outside world beyond storage: a cache, tokens, password hashing
and the time. The storage ports stay with the domain (`domain.ports`). Adapters subclass these."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs

from domain.users import Password


@attrs.frozen
class CacheHit:
    """The stored rendering, current for the user."""

    payload: bytes


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


class TokenService(Protocol):
    def issue(self, user_id: int) -> IssuedToken: ...

    def verify(self, token: str) -> int:
        """Returns the user id the token was issued to. Raises NotAuthenticated."""
        ...


class ConfirmedCallers(Protocol):
    """Callers the store confirmed a moment ago, so that most requests are resolved without asking
    it. An entry that is missing or has expired costs one store lookup, never a wrong answer."""

    async def recently_confirmed(self, user_id: int) -> bool: ...

    async def confirm(self, user_id: int) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC."""
        ...
