"""What the domain needs from storage: repositories and the unit of work. Adapters subclass these
explicitly; the application's other needs are in `application.ports`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from domain.posts import NewPost, Post, PostPosition, PostQuota
from domain.sessions import Session
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

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Raises StorageUnavailable."""
        ...

    async def delete(self, user_id: int) -> bool:
        """The user only: their posts and sessions go first. Raises StorageUnavailable."""
        ...

    async def upgrade_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        """Replaces the user's password hash only while it is still `old_hash` (a password changed
        meanwhile is kept). Raises StorageUnavailable."""
        ...


class PostRepository(Protocol):
    async def add_all(self, posts: Sequence[NewPost], quota: PostQuota) -> Sequence[int]:
        """Stores posts of one owner, all or none: only if the owner stays within `quota` with all of
        them, counted atomically with the inserts (concurrent adds cannot overshoot), and returns their
        ids in the order given. Their `created_at` is taken once this write holds its place in commit
        order: a later commit never carries an earlier time for the same owner. Raises
        PostQuotaExceeded, NotAuthenticated when the owner does not exist, StorageUnavailable."""
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

    async def delete_all_of(self, owner_id: int) -> None:
        """Raises StorageUnavailable."""
        ...


class SessionRepository(Protocol):
    """Every statement names the session's user."""

    async def add(self, session: Session) -> None:
        """Raises StorageUnavailable."""
        ...

    async def get(self, user_id: int, session_id: str) -> Session | None:
        """Ended sessions too. Raises StorageUnavailable."""
        ...

    async def list_alive(self, user_id: int, now: datetime) -> Sequence[Session]:
        """Most recently used first. Raises StorageUnavailable."""
        ...

    async def rotate(
        self,
        user_id: int,
        session_id: str,
        generation: int,
        refresh_hash: str,
        refresh_expires_at: datetime,
        now: datetime,
    ) -> bool:
        """Moves the session from `generation` to the next one with a new refresh token hash, in
        one conditional statement: only if it is alive and still at `generation`. Of concurrent
        rotations from one generation, exactly one returns True. Raises StorageUnavailable."""
        ...

    async def end(self, user_id: int, session_id: str, now: datetime) -> bool:
        """False when no live session had that id. Raises StorageUnavailable."""
        ...

    async def end_all(self, user_id: int, now: datetime, keep: str | None = None) -> None:
        """Ends every live session of the user but `keep`. Raises StorageUnavailable."""
        ...

    async def delete_all_of(self, user_id: int) -> None:
        """Raises StorageUnavailable."""
        ...


class UnitOfWork(Protocol):
    """One transaction: rolled back on exit unless `commit` was awaited."""

    users: UserRepository
    posts: PostRepository
    sessions: SessionRepository

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
