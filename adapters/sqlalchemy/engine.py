from __future__ import annotations

import asyncio
from typing import Any

import attrs
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.sqlalchemy.uow import Queues, SqlUnitOfWork, Turns, storage_errors
from application.ports import Clock


@attrs.frozen
class EngineOptions:
    """How a server process talks to MySQL: bounded everywhere, so that a dead or frozen database
    costs a request seconds, not the driver's default minutes.

    `operation_timeout_seconds` bounds a whole unit of work (pool checkout, pre-ping, reconnect,
    statements, commit) once it is its turn; `queue_timeout_seconds` bounds the wait for that turn
    (a connection of the full pool; on SQLite, the process's writer lock too), which under load is
    back-pressure, not an outage; `read_timeout_seconds` bounds each wait for the server, and is off
    (None) for migrations, whose DDL may legitimately take long."""

    pool_size: int = 10
    max_overflow: int = 0
    pool_timeout_seconds: float = 2.0
    connect_timeout_seconds: int = 2
    read_timeout_seconds: float | None = 5.0
    recycle_seconds: int = 1800
    operation_timeout_seconds: float | None = 3.0
    queue_timeout_seconds: float | None = 10.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Enforce the posts -> users foreign key, let readers work beside a writer, and wait for a
    # lock held by another process instead of failing at once. In WAL mode, NORMAL syncs at
    # checkpoints rather than at every commit: a commit survives the process crashing, and only a
    # power loss can take back the last ones.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # 256 KiB of pages per connection, not SQLite's 2 MB: reading long posts fills a connection's
    # cache, which it then keeps (the process after two rounds of 8 reads of an 80 MiB list: 95 MB
    # with the default, 89 MB with this; the reads as fast). A page not kept is in the operating
    # system's cache, a system call away: add-post at 64 connections as fast either way.
    cursor.execute("PRAGMA cache_size=-256")
    cursor.close()


def create_engine(url: str | URL, options: EngineOptions) -> AsyncEngine:
    engine = _create_engine(make_url(url), options)
    # Parameter sets of an INSERT without RETURNING go as one multi-row statement too (pages of 1,000
    # rows; 333 on SQLite, with its 999 parameters), not through the driver's executemany, which
    # asyncmy splits into one round trip per row once a value is SQL (SYSDATE) and SQLite does not
    # give a last row id for. A group of adds (at most 64 posts) is one statement, whose last row
    # id SqlPostRepository reads.
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def _create_engine(parsed: URL, options: EngineOptions) -> AsyncEngine:
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(
            parsed,
            # No ping at checkout: a file's connection cannot die with a server, and each statement
            # through aiosqlite costs four thread round trips (a fifth of an add-post's).
            pool_pre_ping=False,
            pool_size=options.pool_size,
            max_overflow=options.max_overflow,
            pool_timeout=options.pool_timeout_seconds,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {
        "connect_timeout": options.connect_timeout_seconds,
        "charset": "utf8mb4",
        # Timestamps the server takes (SYSDATE) are UTC, like those the service takes.
        "init_command": "SET time_zone = '+00:00'",
    }
    if options.read_timeout_seconds is not None:
        connect_args["read_timeout"] = options.read_timeout_seconds
    return create_async_engine(
        parsed,
        # A connection that died with a database restart is found and replaced at checkout.
        pool_pre_ping=True,
        pool_recycle=options.recycle_seconds,
        pool_size=options.pool_size,
        max_overflow=options.max_overflow,
        pool_timeout=options.pool_timeout_seconds,
        connect_args=connect_args,
    )


class SqlUnitsOfWork:
    """The units of work over `engine`: admitted as its pool has room and, on SQLite, writing one
    at a time; each waits at most `queue_timeout_seconds` for its turn."""

    def __init__(self, engine: AsyncEngine, options: EngineOptions, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock
        self._timeout = options.operation_timeout_seconds
        self._queues = Queues(
            connections=Turns(options.pool_size + options.max_overflow),
            writer=asyncio.Lock() if engine.dialect.name == "sqlite" else None,
            wait_seconds=options.queue_timeout_seconds,
        )

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, self._queues, self._clock, self._timeout)

    @property
    def engine(self) -> AsyncEngine:
        """Its pool is what metrics watch and tracing instruments."""
        return self._engine

    async def ping(self) -> None:
        """Raises StorageUnavailable."""
        async with storage_errors(self._timeout), self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @property
    def waiting(self) -> int:
        """Units of work waiting for a connection of the full pool."""
        return self._queues.connections.waiting
