"""Small fakes for the use-case tests: real implementations of the ports that count, fail or wait.

They wrap the in-memory adapters where they can, so the behaviour under test stays the real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import attrs
from pydantic_core import to_json

from adapters.cache.memory import InProcessPostsCache
from adapters.memory import InMemoryStore, InMemoryUnitOfWork
from application.errors import CacheUnavailable
from application.ports import CacheLookup, CacheOutage, Clock, PasswordHasher
from application.posts import PostsRenderer
from domain.errors import StorageUnavailable
from domain.ports import PostRepository, SessionRepository, UnitOfWork, UserRepository
from domain.posts import NewPost, Post, PostPosition, PostQuota
from domain.sessions import Session
from domain.users import Email, NewUser, Password, User


class FixedClock(Clock):
    def __init__(self, at: datetime = datetime(2026, 11, 20, 22, 21, tzinfo=UTC)) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class PlainHasher(PasswordHasher):
    """Not a hash at all: a fake that counts how often it was asked to verify, and against what.

    `old:<password>` stands for a hash made with older parameters: it verifies, and needs a rehash.
    """

    def __init__(self) -> None:
        self.verified_against: list[str | None] = []

    async def hash(self, password: Password) -> str:
        return f"plain:{password.value}"

    async def verify(self, password_hash: str | None, password: str) -> bool:
        self.verified_against.append(password_hash)
        return password_hash in (f"plain:{password}", f"old:{password}")

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith("plain:")


@attrs.define
class Calls:
    uows_opened: int = 0
    repository_calls: int = 0

    @property
    def total(self) -> int:
        return self.uows_opened + self.repository_calls


class _CountingUsers(UserRepository):
    def __init__(self, inner: UserRepository, calls: Calls) -> None:
        self._inner = inner
        self._calls = calls

    async def add(self, user: NewUser) -> User:
        self._calls.repository_calls += 1
        return await self._inner.add(user)

    async def get(self, user_id: int) -> User | None:
        self._calls.repository_calls += 1
        return await self._inner.get(user_id)

    async def by_email(self, email: Email) -> User | None:
        self._calls.repository_calls += 1
        return await self._inner.by_email(email)

    async def upgrade_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        self._calls.repository_calls += 1
        await self._inner.upgrade_password_hash(user_id, old_hash, new_hash)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self._calls.repository_calls += 1
        await self._inner.set_password_hash(user_id, password_hash)

    async def delete(self, user_id: int) -> bool:
        self._calls.repository_calls += 1
        return await self._inner.delete(user_id)


class _CountingPosts(PostRepository):
    def __init__(self, inner: PostRepository, calls: Calls) -> None:
        self._inner = inner
        self._calls = calls

    async def add_all(self, posts: Sequence[NewPost], quota: PostQuota) -> Sequence[int]:
        self._calls.repository_calls += 1
        return await self._inner.add_all(posts, quota)

    async def list_by_owner(self, owner_id: int) -> Sequence[Post]:
        self._calls.repository_calls += 1
        return await self._inner.list_by_owner(owner_id)

    async def page_by_owner(self, owner_id: int, after: PostPosition | None, limit: int) -> Sequence[Post]:
        self._calls.repository_calls += 1
        return await self._inner.page_by_owner(owner_id, after, limit)

    async def delete(self, post_id: int, owner_id: int) -> bool:
        self._calls.repository_calls += 1
        return await self._inner.delete(post_id, owner_id)

    async def delete_all_of(self, owner_id: int) -> None:
        self._calls.repository_calls += 1
        await self._inner.delete_all_of(owner_id)


class CountingUnitOfWork(UnitOfWork):
    """The in-memory unit of work, counting every time it is opened and every repository call."""

    def __init__(self, store: InMemoryStore, calls: Calls, clock: Clock) -> None:
        self._inner = InMemoryUnitOfWork(store, clock)
        self._calls = calls
        self.users = _CountingUsers(self._inner.users, calls)
        self.posts = _CountingPosts(self._inner.posts, calls)
        # Sessions are not counted: the tests that count are about posts.
        self.sessions = self._inner.sessions

    async def __aenter__(self) -> Self:
        self._calls.uows_opened += 1
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        await self._inner.commit()


class CountingStorage:
    """A UnitOfWorkFactory over one in-memory store that counts what it is asked to do."""

    def __init__(self, clock: Clock) -> None:
        self.store = InMemoryStore()
        self.calls = Calls()
        self.clock = clock

    def __call__(self) -> UnitOfWork:
        return CountingUnitOfWork(self.store, self.calls, self.clock)


class _DownUsers(UserRepository):
    async def add(self, user: NewUser) -> User:
        raise StorageUnavailable("down")

    async def get(self, user_id: int) -> User | None:
        raise StorageUnavailable("down")

    async def by_email(self, email: Email) -> User | None:
        raise StorageUnavailable("down")

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        raise StorageUnavailable("down")

    async def delete(self, user_id: int) -> bool:
        raise StorageUnavailable("down")

    async def upgrade_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        raise StorageUnavailable("down")


class _DownPosts(PostRepository):
    async def add_all(self, posts: Sequence[NewPost], quota: PostQuota) -> Sequence[int]:
        raise StorageUnavailable("down")

    async def list_by_owner(self, owner_id: int) -> Sequence[Post]:
        raise StorageUnavailable("down")

    async def page_by_owner(self, owner_id: int, after: PostPosition | None, limit: int) -> Sequence[Post]:
        raise StorageUnavailable("down")

    async def delete(self, post_id: int, owner_id: int) -> bool:
        raise StorageUnavailable("down")

    async def delete_all_of(self, owner_id: int) -> None:
        raise StorageUnavailable("down")


class _DownSessions(SessionRepository):
    async def add(self, session: Session) -> None:
        raise StorageUnavailable("down")

    async def get(self, user_id: int, session_id: str) -> Session | None:
        raise StorageUnavailable("down")

    async def list_alive(self, user_id: int, now: datetime) -> Sequence[Session]:
        raise StorageUnavailable("down")

    async def rotate(
        self,
        user_id: int,
        session_id: str,
        generation: int,
        refresh_hash: str,
        refresh_expires_at: datetime,
        now: datetime,
    ) -> bool:
        raise StorageUnavailable("down")

    async def end(self, user_id: int, session_id: str, now: datetime) -> bool:
        raise StorageUnavailable("down")

    async def end_all(self, user_id: int, now: datetime, keep: str | None = None) -> None:
        raise StorageUnavailable("down")

    async def delete_all_of(self, user_id: int) -> None:
        raise StorageUnavailable("down")


class DownUnitOfWork(UnitOfWork):
    """A database that cannot be reached: every repository call and every commit fails."""

    def __init__(self) -> None:
        self.users = _DownUsers()
        self.posts = _DownPosts()
        self.sessions = _DownSessions()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        raise StorageUnavailable("down")


class DownCache(InProcessPostsCache):
    """A cache backend that is down: lookups find an outage, writes raise CacheUnavailable."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=300)
        self.attempts = 0

    async def lookup(self, user_id: int, view: str) -> CacheLookup:
        self.attempts += 1
        return CacheOutage("down")

    async def lookup_all(self, user_id: int, views: Sequence[str]) -> Sequence[CacheLookup]:
        self.attempts += 1
        return [CacheOutage("down")] * len(views)

    async def fill(self, user_id: int, view: str, version: str, payload: bytes) -> None:
        self.attempts += 1
        raise CacheUnavailable("down")

    async def invalidate(self, user_id: int) -> None:
        self.attempts += 1
        raise CacheUnavailable("down")


class GatedFillCache(InProcessPostsCache):
    """The in-process cache, except that a fill waits at a gate: lets a test put a write between a
    reader's load and its fill."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=300)
        self.fill_reached = asyncio.Event()
        self.gate = asyncio.Event()

    async def fill(self, user_id: int, view: str, version: str, payload: bytes) -> None:
        self.fill_reached.set()
        await self.gate.wait()
        await super().fill(user_id, view, version, payload)


class TextsRenderer(PostsRenderer):
    """A minimal wire format: the texts, oldest first."""

    def __init__(self, view: str = "texts") -> None:
        self.view = view

    def render(self, owner: User, posts: Sequence[Post], *, first: bool, last: bool) -> Iterator[bytes]:
        texts = to_json([post.text.value for post in posts])[1:-1]
        yield (b"[" if first else b"," if texts else b"") + texts + (b"]" if last else b"")


class FakeLibc:
    """The two calls of glibc's allocator the service makes, noted instead of made."""

    def __init__(self) -> None:
        self.settings: list[tuple[int, int]] = []
        self.trims: list[int] = []

    def mallopt(self, option: int, value: int) -> int:
        self.settings.append((option, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.trims.append(pad)
        return 1
