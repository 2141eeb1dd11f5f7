from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

import attrs
from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import Executable

from adapters.sqlalchemy.tables import posts, sessions, text_bytes, users
from application.ports import Clock
from domain.errors import NotAuthenticated, PostQuotaExceeded, StorageUnavailable, UserAlreadyExists
from domain.ports import PostRepository, SessionRepository, UnitOfWork, UserRepository
from domain.posts import NewPost, Post, PostPosition, PostQuota, PostText
from domain.sessions import Session
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


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _user(row: Row[Any]) -> User:
    return User(row.id, Email(row.email), row.password_hash, _utc(row.created_at))


def _post(row: Row[Any]) -> Post:
    return Post(row.id, row.user_id, PostText(row.text), _utc(row.created_at))


def _session_of(row: Row[Any]) -> Session:
    return Session(
        row.id,
        row.user_id,
        _utc(row.created_at),
        _utc(row.last_used_at),
        row.refresh_hash,
        row.refresh_generation,
        _utc(row.refresh_expires_at),
        None if row.ended_at is None else _utc(row.ended_at),
    )


class Turns:
    """First come, first served: `size` holders at a time, the others wait in line."""

    def __init__(self, size: int) -> None:
        self._places = asyncio.Semaphore(size)
        self.waiting = 0

    async def take(self, timeout_seconds: float | None) -> None:
        """Raises TimeoutError when no place came free in time."""
        self.waiting += 1
        try:
            async with asyncio.timeout(timeout_seconds):
                await self._places.acquire()
        finally:
            self.waiting -= 1

    def give_back(self) -> None:
        self._places.release()


@attrs.frozen
class Queues:
    """What units of work of one engine wait on before they work, instead of failing.

    `connections` admits as many units of work as the pool has connections, first come first
    served: a full pool is a queue, never an outage. `writer`, for SQLite, lets one unit of work
    of the process write at a time, so writers queue here rather than on SQLite's file lock."""

    connections: Turns
    writer: asyncio.Lock | None
    # How long a unit of work may wait in the queues above: once it is its turn, it still gets its
    # whole `timeout_seconds` to work.
    wait_seconds: float | None


class SqlUnitOfWork(UnitOfWork):
    """A connection and its transaction per unit of work.

    It waits for its turn (a connection; on SQLite, the writer lock) for at most the queues'
    `wait_seconds`, and with `timeout_seconds` everything from the first statement to the commit must
    be done within that time, the waiting for a turn not counted, or the unit of work fails with
    StorageUnavailable: a frozen database costs a request seconds, not a hang."""

    def __init__(
        self,
        engine: AsyncEngine,
        queues: Queues,
        clock: Clock,
        timeout_seconds: float | None = None,
    ) -> None:
        self._engine = engine
        self._queues = queues
        self._clock = clock
        self._timeout = timeout_seconds
        self._connection: AsyncConnection | None = None
        self._admitted = False
        self._writing = False
        self._deadline: float | None = None
        self.users = SqlUserRepository(self)
        self.posts = SqlPostRepository(self)
        self.sessions = SqlSessionRepository(self)

    async def __aenter__(self) -> Self:
        try:
            await self._queues.connections.take(self._queues.wait_seconds)
        except TimeoutError:
            raise StorageUnavailable("no database connection came free in time") from None
        self._admitted = True
        self._deadline = self._after(self._timeout)
        return self

    def _after(self, seconds: float | None) -> float | None:
        return None if seconds is None else asyncio.get_running_loop().time() + seconds

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - asyncio.get_running_loop().time()

    def guard(self) -> AbstractAsyncContextManager[None]:
        return storage_errors(self._remaining())

    async def connection(self) -> AsyncConnection:
        """The unit of work's connection, checked out on first use. Call inside `guard()`."""
        if self._connection is None:
            self._connection = await self._engine.connect()
        return self._connection

    @property
    def serializes_writes(self) -> bool:
        return self._queues.writer is not None

    async def begin_write(self) -> datetime:
        """Takes this unit of work's place among the writers; returns the time its writes carry.

        SQLite: waits for the process's writer lock (the clock of the unit of work stops meanwhile),
        then takes the file's write lock with BEGIN IMMEDIATE (other processes queue on
        `busy_timeout`), then reads the clock. Both locks are held until the transaction ends, so
        the times of committed writes only grow."""
        writer = self._queues.writer
        if writer is not None and not self._writing:
            started = asyncio.get_running_loop().time()
            try:
                async with asyncio.timeout(self._queues.wait_seconds):
                    await writer.acquire()
            except TimeoutError:
                raise StorageUnavailable("the write queue did not move in time") from None
            self._writing = True
            if self._deadline is not None:
                self._deadline += asyncio.get_running_loop().time() - started
            async with self.guard():
                await (await self.connection()).exec_driver_sql("BEGIN IMMEDIATE")
        return self._clock.now()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._connection is not None:
                # Closing rolls back whatever was not committed and returns the connection to the
                # pool; a rollback that does not come back in time is cut, which discards it.
                async with asyncio.timeout(self._timeout):
                    await self._connection.close()
        except (SQLAlchemyError, OSError, TimeoutError):
            log.warning("could not close a database connection cleanly", exc_info=True)
        finally:
            self._connection = None
            if self._writing:
                self._writing = False
                cast(asyncio.Lock, self._queues.writer).release()
            if self._admitted:
                self._admitted = False
                self._queues.connections.give_back()

    async def commit(self) -> None:
        if self._connection is None:
            return
        async with self.guard():
            await self._connection.commit()


class _Repository:
    def __init__(self, work: SqlUnitOfWork) -> None:
        self._work = work

    async def _execute(
        self, statement: Executable, parameters: dict[str, Any] | Sequence[dict[str, Any]] | None = None
    ) -> CursorResult[Any]:
        """Call inside the unit of work's `guard()`."""
        return await (await self._work.connection()).execute(statement, parameters)


class SqlUserRepository(_Repository, UserRepository):
    async def add(self, user: NewUser) -> User:
        await self._work.begin_write()
        async with self._work.guard():
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
        async with self._work.guard():
            row = (await self._execute(select(users).where(users.c.id == user_id))).first()
        return None if row is None else _user(row)

    async def by_email(self, email: Email) -> User | None:
        async with self._work.guard():
            row = (await self._execute(select(users).where(users.c.email == email.value))).first()
        return None if row is None else _user(row)

    async def upgrade_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> None:
        await self._work.begin_write()
        async with self._work.guard():
            await self._execute(
                update(users)
                .where(users.c.id == user_id, users.c.password_hash == old_hash)
                .values(password_hash=new_hash)
            )

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._work.begin_write()
        async with self._work.guard():
            await self._execute(
                update(users).where(users.c.id == user_id).values(password_hash=password_hash)
            )

    async def delete(self, user_id: int) -> bool:
        await self._work.begin_write()
        async with self._work.guard():
            result = await self._execute(delete(users).where(users.c.id == user_id))
        return bool(result.rowcount)


def _page_query(after: bool) -> Executable:
    query = select(posts).where(posts.c.user_id == bindparam("owner_id"))
    if after:
        # A row-value comparison, written out: SQLite and MySQL both use the index for it.
        query = query.where(
            or_(
                posts.c.created_at > bindparam("created_at"),
                and_(posts.c.created_at == bindparam("created_at"), posts.c.id > bindparam("after_id")),
            )
        )
    return query.order_by(posts.c.created_at, posts.c.id).limit(bindparam("limit"))


# Made once: building the statement and its cache key took ~150 us of the event loop per page,
# a third of what a page of a big list holds the loop for in one step.
_FIRST_PAGE = _page_query(after=False)
_NEXT_PAGE = _page_query(after=True)


class SqlPostRepository(_Repository, PostRepository):
    async def add_all(self, new_posts: Sequence[NewPost], quota: PostQuota) -> Sequence[int]:
        owner_id = NewPost.owner_of(new_posts)
        count, size = len(new_posts), sum(post.text.size for post in new_posts)
        within: list[ColumnElement[bool]] = [users.c.id == owner_id]
        if quota.max_posts is not None:
            within.append(users.c.post_count + count <= quota.max_posts)
        if quota.max_bytes is not None:
            within.append(users.c.post_bytes + size <= quota.max_bytes)
        counted = (
            update(users)
            .where(*within)
            .values(post_count=users.c.post_count + count, post_bytes=users.c.post_bytes + size)
        )
        now = await self._work.begin_write()
        async with self._work.guard():
            # The owner's row stays locked until commit: concurrent adds queue here and each sees
            # the counts the previous one left, so none can overshoot the quota.
            if not (await self._execute(counted)).rowcount:
                owner = select(users.c.id).where(users.c.id == owner_id)
                if (await self._execute(owner)).first() is None:
                    raise NotAuthenticated
                raise PostQuotaExceeded
            # The time is read once this add holds its place, so a later commit carries a later
            # time: SQLite's `now` was read after the writer locks were taken; MySQL's server clock
            # is read by SYSDATE() (unlike NOW()) when the insert runs, after the row lock above was
            # granted. The session's time zone is UTC (see the engine).
            created_at: Any = (
                _naive_utc(now) if self._work.serializes_writes else func.sysdate(literal_column("6"))
            )
            rows = [{"user_id": owner_id, "text": post.text.value} for post in new_posts]
            try:
                # The rows as parameter sets of one single-row statement: SQLAlchemy's compiled
                # form of it is cached, and "insertmanyvalues" sends them as one multi-row INSERT
                # (see the engine), one round trip. (A statement with the rows in its VALUES is
                # compiled anew each time: a tenth of the server's time under a burst of adds.)
                result = await self._execute(insert(posts).values(created_at=created_at), rows)
            except IntegrityError:
                # fk_posts_user_id_users: a validly signed token for a user who no longer exists.
                raise NotAuthenticated from None
            return await self._inserted_ids(result.lastrowid, owner_id, len(rows))

    async def _inserted_ids(self, lastrowid: int | None, owner_id: int, count: int) -> list[int]:
        """The ids of the `count` rows the owner's last insert made, in order."""
        if lastrowid is None:
            raise StorageUnavailable("no id was returned for the new posts")
        if self._work.serializes_writes:
            # SQLite names the statement's last row, and numbers one statement's rows in a row: no
            # other write runs beside it.
            return list(range(lastrowid - count + 1, lastrowid + 1))
        if count == 1:
            return [lastrowid]
        # MySQL names the first row. The owner's row, locked by the quota's update until commit, keeps
        # any other add of theirs out meanwhile, so their posts from that id on are exactly these.
        query = (
            select(posts.c.id)
            .where(posts.c.user_id == owner_id, posts.c.id >= lastrowid)
            .order_by(posts.c.id)
        )
        ids = [int(post_id) for post_id in (await self._execute(query)).scalars()]
        if len(ids) != count:
            raise StorageUnavailable(f"{len(ids)} ids found for {count} new posts")
        return ids

    async def list_by_owner(self, owner_id: int) -> Sequence[Post]:
        query = select(posts).where(posts.c.user_id == owner_id).order_by(posts.c.created_at, posts.c.id)
        async with self._work.guard():
            rows = (await self._execute(query)).all()
        return [_post(row) for row in rows]

    async def page_by_owner(self, owner_id: int, after: PostPosition | None, limit: int) -> Sequence[Post]:
        query = _FIRST_PAGE
        values: dict[str, Any] = {"owner_id": owner_id, "limit": limit}
        if after is not None:
            query = _NEXT_PAGE
            values.update(created_at=_naive_utc(after.created_at), after_id=after.id)
        async with self._work.guard():
            rows = (await self._execute(query, values)).all()
        return [_post(row) for row in rows]

    async def delete(self, post_id: int, owner_id: int) -> bool:
        mine = (posts.c.id == post_id, posts.c.user_id == owner_id)
        await self._work.begin_write()
        async with self._work.guard():
            size = (await self._execute(select(text_bytes(posts.c.text)).where(*mine))).scalar()
            if size is None or not (await self._execute(delete(posts).where(*mine))).rowcount:
                return False
            await self._execute(
                update(users)
                .where(users.c.id == owner_id)
                .values(post_count=users.c.post_count - 1, post_bytes=users.c.post_bytes - size)
            )
        return True

    async def delete_all_of(self, owner_id: int) -> None:
        await self._work.begin_write()
        async with self._work.guard():
            await self._execute(delete(posts).where(posts.c.user_id == owner_id))


class SqlSessionRepository(_Repository, SessionRepository):
    async def add(self, session: Session) -> None:
        await self._work.begin_write()
        async with self._work.guard():
            try:
                await self._execute(
                    insert(sessions).values(
                        user_id=session.user_id,
                        id=session.id,
                        created_at=_naive_utc(session.created_at),
                        last_used_at=_naive_utc(session.last_used_at),
                        refresh_hash=session.refresh_hash,
                        refresh_generation=session.refresh_generation,
                        refresh_expires_at=_naive_utc(session.refresh_expires_at),
                    )
                )
            except IntegrityError:
                # fk_sessions_user_id_users: the user was deleted meanwhile.
                raise NotAuthenticated from None

    async def get(self, user_id: int, session_id: str) -> Session | None:
        query = select(sessions).where(sessions.c.user_id == user_id, sessions.c.id == session_id)
        async with self._work.guard():
            row = (await self._execute(query)).first()
        return None if row is None else _session_of(row)

    async def list_alive(self, user_id: int, now: datetime) -> Sequence[Session]:
        query = (
            select(sessions)
            .where(
                sessions.c.user_id == user_id,
                sessions.c.ended_at.is_(None),
                sessions.c.refresh_expires_at > _naive_utc(now),
            )
            .order_by(sessions.c.last_used_at.desc(), sessions.c.created_at.desc(), sessions.c.id.desc())
        )
        async with self._work.guard():
            rows = (await self._execute(query)).all()
        return [_session_of(row) for row in rows]

    async def rotate(
        self,
        user_id: int,
        session_id: str,
        generation: int,
        refresh_hash: str,
        refresh_expires_at: datetime,
        now: datetime,
    ) -> bool:
        statement = (
            update(sessions)
            .where(
                sessions.c.user_id == user_id,
                sessions.c.id == session_id,
                sessions.c.refresh_generation == generation,
                sessions.c.ended_at.is_(None),
                sessions.c.refresh_expires_at > _naive_utc(now),
            )
            .values(
                refresh_hash=refresh_hash,
                refresh_generation=generation + 1,
                refresh_expires_at=_naive_utc(refresh_expires_at),
                last_used_at=_naive_utc(now),
            )
        )
        await self._work.begin_write()
        async with self._work.guard():
            result = await self._execute(statement)
        return result.rowcount == 1

    async def end(self, user_id: int, session_id: str, now: datetime) -> bool:
        statement = (
            update(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.id == session_id, sessions.c.ended_at.is_(None))
            .values(ended_at=_naive_utc(now))
        )
        await self._work.begin_write()
        async with self._work.guard():
            result = await self._execute(statement)
        return bool(result.rowcount)

    async def end_all(self, user_id: int, now: datetime, keep: str | None = None) -> None:
        statement = update(sessions).where(sessions.c.user_id == user_id, sessions.c.ended_at.is_(None))
        if keep is not None:
            statement = statement.where(sessions.c.id != keep)
        await self._work.begin_write()
        async with self._work.guard():
            await self._execute(statement.values(ended_at=_naive_utc(now)))

    async def delete_all_of(self, user_id: int) -> None:
        await self._work.begin_write()
        async with self._work.guard():
            await self._execute(delete(sessions).where(sessions.c.user_id == user_id))
