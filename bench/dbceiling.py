"""The storage ceilings: the insert-and-commit of a 200-byte post that add-post makes, straight
through the driver with no HTTP and no ORM, at a given concurrency for a given time.

MySQL: asyncmy, a pool as large as hexpost's (pool plus overflow), one coroutine per client.
SQLite: the standard library's sqlite3, one connection in WAL mode with hexpost's pragmas and
synchronous=NORMAL (what WAL is designed for: a commit survives a crash of the process, the last
ones may be lost with the machine's power), one commit per post.

Prints one JSON object: {"operations", "seconds", "per_second", "errors"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import asyncmy
from sqlalchemy import create_engine, insert
from sqlalchemy.engine import make_url

from adapters.sqlalchemy.tables import metadata, users

POST_TEXT = "p" * 200
INSERT_POST = "INSERT INTO posts (user_id, text, created_at) VALUES (%s, %s, %s)"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def mysql_inserts(
    url: str, user_id: int, pool_size: int, concurrency: int, seconds: float
) -> dict[str, Any]:
    parsed = make_url(url)
    pool = await asyncmy.create_pool(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 3306,
        user=parsed.username or "root",
        password=parsed.password or "",
        db=parsed.database,
        minsize=pool_size,
        maxsize=pool_size,
        charset="utf8mb4",
        autocommit=False,
    )
    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            try:
                async with pool.acquire() as connection:
                    async with connection.cursor() as cursor:
                        await cursor.execute(INSERT_POST, (user_id, POST_TEXT, _now()))
                    await connection.commit()
                done += 1
            except asyncmy.errors.Error:
                errors += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client() for _ in range(concurrency)))
    finally:
        pool.close()
        await pool.wait_closed()
    elapsed = time.perf_counter() - started
    return {"operations": done, "seconds": elapsed, "per_second": done / elapsed, "errors": errors}


def sqlite_commits(path: str, seconds: float) -> dict[str, Any]:
    """A fresh database file with hexpost's schema, and one user who owns every post."""
    schema = create_engine(f"sqlite:///{path}")
    with schema.begin() as connection:
        metadata.create_all(connection)
        connection.execute(
            insert(users).values(email="ceiling@example.com", password_hash="-", created_at=_now())
        )
    schema.dispose()
    raw = sqlite3.connect(path, isolation_level=None)
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000"):
        raw.execute(f"PRAGMA {pragma}")
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    try:
        while time.perf_counter() < deadline:
            raw.execute("BEGIN")
            raw.execute(
                "INSERT INTO posts (user_id, text, created_at) VALUES (1, ?, ?)", (POST_TEXT, str(_now()))
            )
            raw.execute("COMMIT")
            done += 1
    finally:
        raw.close()
    elapsed = time.perf_counter() - started
    return {"operations": done, "seconds": elapsed, "per_second": done / elapsed, "errors": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description="bench storage ceilings")
    parser.add_argument("--seconds", type=float, required=True)
    kinds = parser.add_subparsers(dest="kind", required=True)
    mysql = kinds.add_parser("mysql")
    mysql.add_argument("--url", required=True)
    mysql.add_argument("--user-id", type=int, required=True)
    mysql.add_argument("--pool-size", type=int, required=True)
    mysql.add_argument("--concurrency", type=int, required=True)
    sqlite = kinds.add_parser("sqlite")
    sqlite.add_argument("--path", required=True)
    args = parser.parse_args()
    if args.kind == "mysql":
        result = asyncio.run(
            mysql_inserts(args.url, args.user_id, args.pool_size, args.concurrency, args.seconds)
        )
    else:
        result = sqlite_commits(args.path, args.seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
