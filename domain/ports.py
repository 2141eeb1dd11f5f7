"""What the domain needs from storage: repositories and the unit of work. Adapters subclass these
explicitly; the application's other needs are in `application.ports`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol, Self

from domain.posts import NewPost, Post, PostPosition, PostQuota
from domain.users import Email, NewUser, User

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

    async def upgrade_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        """Replaces the user's password hash only while it is still `old_hash` (a password changed
        meanwhile is kept). Raises StorageUnavailable."""
        ...


class PostRepository(Protocol):
    async def add(self, post: NewPost, quota: PostQuota) -> int:
        """Stores the post only if its owner stays within `quota`, counted atomically with the insert
        (concurrent adds cannot overshoot), and returns its id. Its `created_at` is taken once this
        write holds its place in commit order: a later commit never carries an earlier time for the
        same owner. Raises PostQuotaExceeded, NotAuthenticated when the owner does not exist,
        StorageUnavailable."""
        ...

    async def list_by_owner(self, owner_id: int) -> Sequence[Post]:
        """Oldest first: by `created_at`, ties broken by id. Raises StorageUnavailable."""
        ...

    async def page_by_owner(self, owner_id: int, after: PostPosition | None, limit: int) -> Sequence[Post]:
        """At most `limit` of the owner's posts, oldest first, those after `after` when given.
        Raises StorageUnavailable."""
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
