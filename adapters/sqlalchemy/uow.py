from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.expression import Executable

from adapters.sqlalchemy.tables import posts, text_bytes, users
from domain.errors import NotAuthenticated, PostQuotaExceeded, StorageUnavailable, UserAlreadyExists
from domain.ports import PostRepository, UnitOfWork, UserRepository
from domain.posts import NewPost, Post, PostPosition, PostQuota, PostText
from domain.users import Email, NewUser, User

log = logging.getLogger(__name__)


@asynccontextmanager
async def storage_errors(timeout_seconds: float | None = None) -> AsyncIterator[None]:
    """Driver and pool failures, and running past `timeout_seconds`, become StorageUnavailable;
    constraint violations are left to callers.

    A timeout cancels the driver mid-operation; asyncmy then closes that connection and the pool
    discards it instead of handing it out again."""
    try:
        async with asyncio.timeout(timeout_seconds):
            yield
    except IntegrityError:
        raise
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise StorageUnavailable(type(exc).__name__) from exc


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - asyncio.get_running_loop().time()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _user(row: Row[Any]) -> User:
    return User(row.id, Email(row.email), row.password_hash, _utc(row.created_at))


def _post(row: Row[Any]) -> Post:
    return Post(row.id, row.user_id, PostText(row.text), _utc(row.created_at))


class _Repository:
    def __init__(self, session: AsyncSession, deadline: float | None) -> None:
        self._session = session
        self._deadline = deadline

    def _guard(self) -> AbstractAsyncContextManager[None]:
        return storage_errors(_remaining(self._deadline))

    async def _execute(self, statement: Executable) -> CursorResult[Any]:
        """For writes, whose results carry the new id or the count of rows touched."""
        return cast(CursorResult[Any], await self._session.execute(statement))


class SqlUserRepository(_Repository, UserRepository):
    async def add(self, user: NewUser) -> User:
        async with self._guard():
            try:
                result = await self._execute(
                    insert(users).values(
                        email=user.email.value,
                        password_hash=user.password_hash,
                        created_at=_naive_utc(user.created_at),
                    )
                )
            except IntegrityError:
                # The only constraint an insert of a well-formed user can break: uq_users_email.
                raise UserAlreadyExists from None
        (user_id,) = result.inserted_primary_key or (None,)
        if user_id is None:
            raise StorageUnavailable("no id was returned for the new user")
        return User(int(user_id), user.email, user.password_hash, user.created_at)

    async def get(self, user_id: int) -> User | None:
        async with self._guard():
            row = (await self._session.execute(select(users).where(users.c.id == user_id))).first()
        return None if row is None else _user(row)

    async def by_email(self, email: Email) -> User | None:
        async with self._guard():
            result = await self._session.execute(select(users).where(users.c.email == email.value))
            row = result.first()
        return None if row is None else _user(row)

    async def upgrade_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        async with self._guard():
            await self._execute(
                update(users)
                .where(users.c.id == user_id, users.c.password_hash == old_hash)
                .values(password_hash=new_hash)
            )


class SqlPostRepository(_Repository, PostRepository):
    async def add(self, post: NewPost, quota: PostQuota) -> Post:
        size = post.text.size
        within: list[ColumnElement[bool]] = [users.c.id == post.owner_id]
        if quota.max_posts is not None:
            within.append(users.c.post_count + 1 <= quota.max_posts)
        if quota.max_bytes is not None:
            within.append(users.c.post_bytes + size <= quota.max_bytes)
        count = (
            update(users)
            .where(*within)
            .values(post_count=users.c.post_count + 1, post_bytes=users.c.post_bytes + size)
        )
        async with self._guard():
            # The owner's row stays locked until commit: concurrent adds queue here and each sees
            # the counts the previous one left, so none can overshoot the quota.
            if not (await self._execute(count)).rowcount:
                owner = select(users.c.id).where(users.c.id == post.owner_id)
                if (await self._session.execute(owner)).first() is None:
                    raise NotAuthenticated
                raise PostQuotaExceeded
            try:
                result = await self._execute(
                    insert(posts).values(
                        user_id=post.owner_id,
                        text=post.text.value,
                        created_at=_naive_utc(post.created_at),
                    )
                )
            except IntegrityError:
                # fk_posts_user_id_users: a validly signed token for a user who no longer exists.
                raise NotAuthenticated from None
        (post_id,) = result.inserted_primary_key or (None,)
        if post_id is None:
            raise StorageUnavailable("no id was returned for the new post")
        return Post(int(post_id), post.owner_id, post.text, post.created_at)

    async def list_by_owner(self, owner_id: int) -> Sequence[Post]:
        query = select(posts).where(posts.c.user_id == owner_id).order_by(posts.c.id)
        async with self._guard():
            rows = (await self._session.execute(query)).all()
        return [_post(row) for row in rows]

    async def page_by_owner(self, owner_id: int, after: PostPosition | None, limit: int) -> Sequence[Post]:
        query = select(posts).where(posts.c.user_id == owner_id)
        if after is not None:
            # A row-value comparison, written out: SQLite and MySQL both use the index for it.
            created_at = _naive_utc(after.created_at)
            query = query.where(
                or_(
                    posts.c.created_at > created_at,
                    and_(posts.c.created_at == created_at, posts.c.id > after.id),
                )
            )
        query = query.order_by(posts.c.created_at, posts.c.id).limit(limit)
        async with self._guard():
            rows = (await self._session.execute(query)).all()
        return [_post(row) for row in rows]

    async def delete(self, post_id: int, owner_id: int) -> bool:
        mine = (posts.c.id == post_id, posts.c.user_id == owner_id)
        async with self._guard():
            size = (await self._session.execute(select(text_bytes(posts.c.text)).where(*mine))).scalar()
            if size is None or not (await self._execute(delete(posts).where(*mine))).rowcount:
                return False
            await self._execute(
                update(users)
                .where(users.c.id == owner_id)
                .values(post_count=users.c.post_count - 1, post_bytes=users.c.post_bytes - size)
            )
        return True


class SqlUnitOfWork(UnitOfWork):
    """A session per unit of work. With `timeout_seconds`, everything from the first statement to
    the commit must be done within that time, or the unit of work fails with StorageUnavailable:
    a frozen database costs a request seconds, not a hang."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], timeout_seconds: float | None = None
    ) -> None:
        self._sessions = sessions
        self._timeout = timeout_seconds

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self._deadline = None if self._timeout is None else asyncio.get_running_loop().time() + self._timeout
        self.users = SqlUserRepository(self._session, self._deadline)
        self.posts = SqlPostRepository(self._session, self._deadline)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            # Closing rolls back whatever was not committed and returns the connection to the pool;
            # a rollback that does not come back in time is cut, which discards the connection.
            async with asyncio.timeout(self._timeout):
                await self._session.close()
        except (SQLAlchemyError, OSError, TimeoutError):
            log.warning("could not close a database session cleanly", exc_info=True)

    async def commit(self) -> None:
        async with storage_errors(_remaining(self._deadline)):
            await self._session.commit()
