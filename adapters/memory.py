"""The `memory://` backend: real repositories and a real unit of work, kept in the process. It serves
the embedded mode and the tests alike, and forgets everything when the process ends."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

import attrs

from application.ports import Clock
from domain.errors import NotAuthenticated, UserAlreadyExists
from domain.ports import PostRepository, SessionRepository, UnitOfWork, UserRepository
from domain.posts import NewPost, Post, PostPosition, PostQuota
from domain.sessions import Session
from domain.users import Email, NewUser, User

Undo = Callable[[], None]


@attrs.define
class InMemoryStore:
    users: dict[int, User] = attrs.Factory(dict)
    user_ids_by_email: dict[Email, int] = attrs.Factory(dict)
    # Per owner, in insertion order, which is (created_at, id) order: posts are stamped as they are
    # added and nothing awaits in between, so listing needs no sort.
    posts_by_owner: dict[int, dict[int, Post]] = attrs.Factory(dict)
    owner_by_post: dict[int, int] = attrs.Factory(dict)
    # Per owner: how many posts and bytes of text they hold, which quotas are checked against.
    usage: dict[int, tuple[int, int]] = attrs.Factory(dict)
    sessions_by_user: dict[int, dict[str, Session]] = attrs.Factory(dict)
    user_ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))
    post_ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))
    # Held by the unit of work that writes, from its first write to its end, as SQLite's write lock
    # is: writes (and their times) come in commit order.
    writer: asyncio.Lock = attrs.Factory(asyncio.Lock)


class _Writes:
    """A unit of work's undo log, and whether it holds the store's writer lock."""

    def __init__(self, store: InMemoryStore) -> None:
        self.store = store
        self.undo: list[Undo] = []
        self.writing = False

    async def begin(self) -> None:
        if not self.writing:
            await self.store.writer.acquire()
            self.writing = True

    def end(self) -> None:
        if self.writing:
            self.writing = False
            self.store.writer.release()


class InMemoryUserRepository(UserRepository):
    def __init__(self, writes: _Writes) -> None:
        self._store = writes.store
        self._writes = writes
        self._undo = writes.undo

    async def add(self, user: NewUser) -> User:
        await self._writes.begin()
        if user.email in self._store.user_ids_by_email:
            raise UserAlreadyExists
        stored = User(next(self._store.user_ids), user.email, user.password_hash, user.created_at)
        self._store.users[stored.id] = stored
        self._store.user_ids_by_email[stored.email] = stored.id

        def undo() -> None:
            del self._store.users[stored.id]
            del self._store.user_ids_by_email[stored.email]

        self._undo.append(undo)
        return stored

    async def get(self, user_id: int) -> User | None:
        return self._store.users.get(user_id)

    async def by_email(self, email: Email) -> User | None:
        user_id = self._store.user_ids_by_email.get(email)
        return None if user_id is None else self._store.users[user_id]

    async def upgrade_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        await self._writes.begin()
        user = self._store.users.get(user_id)
        if user is None or user.password_hash != old_hash:
            return
        self._store.users[user_id] = attrs.evolve(user, password_hash=new_hash)

        def undo() -> None:
            self._store.users[user_id] = user

        self._undo.append(undo)

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._writes.begin()
        user = self._store.users.get(user_id)
        if user is None:
            return
        self._store.users[user_id] = attrs.evolve(user, password_hash=password_hash)
        self._undo.append(lambda: self._store.users.__setitem__(user_id, user))

    async def delete(self, user_id: int) -> bool:
        await self._writes.begin()
        user = self._store.users.pop(user_id, None)
        if user is None:
            return False
        del self._store.user_ids_by_email[user.email]

        def undo() -> None:
            self._store.users[user_id] = user
            self._store.user_ids_by_email[user.email] = user_id

        self._undo.append(undo)
        return True


class InMemoryPostRepository(PostRepository):
    def __init__(self, writes: _Writes, clock: Clock) -> None:
        self._store = writes.store
        self._writes = writes
        self._undo = writes.undo
        self._clock = clock

    async def add_all(self, posts: Sequence[NewPost], quota: PostQuota) -> Sequence[int]:
        await self._writes.begin()
        owner_id = NewPost.owner_of(posts)
        if owner_id not in self._store.users:
            raise NotAuthenticated
        count, size = self._store.usage.get(owner_id, (0, 0))
        quota.check(count + len(posts), size + sum(post.text.size for post in posts))
        now = self._clock.now()
        ids = []
        for post in posts:
            stored = Post(next(self._store.post_ids), owner_id, post.text, now)
            self._store.posts_by_owner.setdefault(owner_id, {})[stored.id] = stored
            self._store.owner_by_post[stored.id] = owner_id
            self._count(stored, 1)
            self._undo.append(functools.partial(self._forget, stored.id, owner_id))
            ids.append(stored.id)
        return ids

    async def list_by_owner(self, owner_id: int) -> Sequence[Post]:
        return list(self._store.posts_by_owner.get(owner_id, {}).values())

    async def page_by_owner(self, owner_id: int, after: PostPosition | None, limit: int) -> Sequence[Post]:
        owned = sorted(self._store.posts_by_owner.get(owner_id, {}).values(), key=PostPosition.of)
        return [post for post in owned if after is None or PostPosition.of(post) > after][:limit]

    async def delete(self, post_id: int, owner_id: int) -> bool:
        await self._writes.begin()
        if self._store.owner_by_post.get(post_id) != owner_id:
            return False
        post = self._store.posts_by_owner[owner_id][post_id]
        self._forget(post_id, owner_id)
        self._undo.append(lambda: self._restore(post))
        return True

    def _count(self, post: Post, sign: int) -> None:
        count, size = self._store.usage.get(post.owner_id, (0, 0))
        self._store.usage[post.owner_id] = (count + sign, size + sign * post.text.size)

    async def delete_all_of(self, owner_id: int) -> None:
        for post in list(self._store.posts_by_owner.get(owner_id, {}).values()):
            await self.delete(post.id, owner_id)

    def _forget(self, post_id: int, owner_id: int) -> None:
        self._count(self._store.posts_by_owner[owner_id].pop(post_id), -1)
        del self._store.owner_by_post[post_id]

    def _restore(self, post: Post) -> None:
        owned = self._store.posts_by_owner[post.owner_id]
        owned[post.id] = post
        self._count(post, 1)
        # Put it back in its place, as if it had never left.
        self._store.posts_by_owner[post.owner_id] = dict(
            sorted(owned.items(), key=lambda item: (item[1].created_at, item[0]))
        )
        self._store.owner_by_post[post.id] = post.owner_id


class InMemorySessionRepository(SessionRepository):
    def __init__(self, writes: _Writes) -> None:
        self._store = writes.store
        self._writes = writes
        self._undo = writes.undo

    def _put(self, session: Session) -> None:
        owned = self._store.sessions_by_user.setdefault(session.user_id, {})
        before = owned.get(session.id)
        owned[session.id] = session

        def undo() -> None:
            if before is None:
                del owned[session.id]
            else:
                owned[session.id] = before

        self._undo.append(undo)

    async def add(self, session: Session) -> None:
        await self._writes.begin()
        if session.user_id not in self._store.users:
            raise NotAuthenticated
        self._put(session)

    async def get(self, user_id: int, session_id: str) -> Session | None:
        return self._store.sessions_by_user.get(user_id, {}).get(session_id)

    async def list_alive(self, user_id: int, now: datetime) -> Sequence[Session]:
        alive = [s for s in self._store.sessions_by_user.get(user_id, {}).values() if s.alive_at(now)]
        return sorted(alive, key=lambda s: (s.last_used_at, s.created_at, s.id), reverse=True)

    async def rotate(
        self,
        user_id: int,
        session_id: str,
        generation: int,
        refresh_hash: str,
        refresh_expires_at: datetime,
        now: datetime,
    ) -> bool:
        await self._writes.begin()
        session = await self.get(user_id, session_id)
        if session is None or not session.alive_at(now) or session.refresh_generation != generation:
            return False
        self._put(
            attrs.evolve(
                session,
                refresh_hash=refresh_hash,
                refresh_generation=generation + 1,
                refresh_expires_at=refresh_expires_at,
                last_used_at=now,
            )
        )
        return True

    async def end(self, user_id: int, session_id: str, now: datetime) -> bool:
        await self._writes.begin()
        session = await self.get(user_id, session_id)
        if session is None or session.ended_at is not None:
            return False
        self._put(attrs.evolve(session, ended_at=now))
        return True

    async def end_all(self, user_id: int, now: datetime, keep: str | None = None) -> None:
        await self._writes.begin()
        for session in list(self._store.sessions_by_user.get(user_id, {}).values()):
            if session.id != keep:
                await self.end(user_id, session.id, now)

    async def delete_all_of(self, user_id: int) -> None:
        await self._writes.begin()
        owned = self._store.sessions_by_user.pop(user_id, None)
        if owned is not None:
            self._undo.append(lambda: self._store.sessions_by_user.__setitem__(user_id, owned))


class InMemoryUnitOfWork(UnitOfWork):
    """Writes go straight to the store with an undo log, replayed backwards unless committed. One
    unit of work writes at a time; a repository awaits only to wait for that turn."""

    def __init__(self, store: InMemoryStore, clock: Clock) -> None:
        self._writes = _Writes(store)
        self._undo = self._writes.undo
        self.users = InMemoryUserRepository(self._writes)
        self.posts = InMemoryPostRepository(self._writes, clock)
        self.sessions = InMemorySessionRepository(self._writes)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._undo:
            self._undo.pop()()
        self._writes.end()

    async def commit(self) -> None:
        self._undo.clear()


def in_memory_uow_factory(store: InMemoryStore, clock: Clock) -> Callable[[], InMemoryUnitOfWork]:
    return lambda: InMemoryUnitOfWork(store, clock)
