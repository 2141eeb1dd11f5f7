"""What the core needs from the outside world. Adapters subclass these explicitly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

import attrs

from domain.posts import NewPost, Post
from domain.users import Email, NewUser, Password, User

# Ids are 64-bit signed integers in every backend; anything larger names nothing.
MAX_ID = 2**63 - 1


class UserRepository(Protocol):
    async def add(self, user: NewUser) -> User:
        """Raises UserAlreadyExists, StorageUnavailable."""
        ...

    async def get(self, user_id: int) -> User | None:
        """Raises StorageUnavailable."""
        ...

    async def by_email(self, email: Email) -> User | None:
        """Raises StorageUnavailable."""
        ...


class PostRepository(Protocol):
    async def add(self, post: NewPost) -> Post:
        """Raises NotAuthenticated when the owner does not exist, StorageUnavailable."""
        ...

    async def list_by_owner(self, owner_id: int) -> Sequence[Post]:
        """Oldest first. Raises StorageUnavailable."""
        ...

    async def delete(self, post_id: int, owner_id: int) -> bool:
        """Deletes the post only if `owner_id` owns it, in one statement; False when nothing matched.
        Raises StorageUnavailable."""
        ...


class UnitOfWork(Protocol):
    """One transaction: rolled back on exit unless `commit` was awaited."""

    users: UserRepository
    posts: PostRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Raises UserAlreadyExists, StorageUnavailable."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


@attrs.frozen
class CachedPosts:
    """A cache lookup: the stored response if there is a current one, and the version to fill against."""

    payload: bytes | None
    version: str


class PostsCache(Protocol):
    """Serialized post lists per user and view, invalidated by bumping the user's version.

    A fill made against an older version than the current one is never served, which is what keeps a
    reader that loaded the list before a write from resurrecting it after the write's invalidation.
    """

    async def lookup(self, user_id: int, view: str) -> CachedPosts:
        """Raises CacheUnavailable."""
        ...

    async def fill(self, user_id: int, view: str, version: str, payload: bytes) -> None:
        """Raises CacheUnavailable."""
        ...

    async def invalidate(self, user_id: int) -> None:
        """Raises CacheUnavailable."""
        ...


class PasswordHasher(Protocol):
    async def hash(self, password: Password) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """With no hash, spends the same work on a dummy one and returns False, so that an unknown
        account cannot be told from a wrong password by timing."""
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


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC."""
        ...
