"""The real MySQL (MariaDB) and Redis servers the integration suites run against.

Tests never share state with each other or with another run on the same servers: each run works in
its own database `hexpost_test_<random>` and under its own Redis key prefix, and removes them
afterwards. An unreachable server skips those tests with the reason, except when `CI=true`, where
it fails them: a CI run that silently skipped the real backends would prove nothing.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn, TypeVar

import asyncmy
import pytest
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import URL, make_url

MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql+asyncmy://root@127.0.0.1:3306")
REDIS_SERVER_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

T = TypeVar("T")


def unavailable(reason: str) -> NoReturn:
    """Skips the test, except under CI=true, where a missing server fails it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def unreachable(what: str, exc: BaseException) -> NoReturn:
    unavailable(
        f"{what} unreachable ({type(exc).__name__}: {exc}); start it or set TEST_MYSQL_URL/TEST_REDIS_URL"
    )


def run_sync(work: Callable[[], Awaitable[T]]) -> T:
    """Runs a coroutine to completion from synchronous code, even inside a running event loop."""

    async def main() -> T:
        return await work()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def unique_name(kind: str) -> str:
    return f"hexpost_test_{kind}{secrets.token_hex(4)}"


def server_url() -> URL:
    return make_url(MYSQL_SERVER_URL)


async def _admin(*statements: str) -> None:
    url = server_url()
    connection = await asyncmy.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=3,
    )
    try:
        async with connection.cursor() as cursor:
            for statement in statements:
                await cursor.execute(statement)
    finally:
        connection.close()


def create_database() -> str:
    """An empty utf8mb4 database of its own; returns its SQLAlchemy URL. Skips (or fails on CI)
    when the server is unreachable."""
    name = unique_name("")
    try:
        run_sync(lambda: _admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    except (OSError, asyncmy.errors.Error) as exc:
        unreachable(f"MySQL/MariaDB at {server_url().render_as_string(hide_password=True)}", exc)
    return server_url().set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = make_url(url).database
    run_sync(lambda: _admin(f"DROP DATABASE IF EXISTS `{name}`"))


async def empty_tables(url: str) -> None:
    name = make_url(url).database
    await _admin(
        "SET FOREIGN_KEY_CHECKS=0",
        f"TRUNCATE TABLE `{name}`.posts",
        f"TRUNCATE TABLE `{name}`.sessions",
        f"TRUNCATE TABLE `{name}`.users",
    )


def redis_client(url: str = REDIS_SERVER_URL) -> Redis:
    return Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)


def check_redis() -> str:
    client = redis_client()
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        unreachable(f"Redis at {REDIS_SERVER_URL}", exc)
    finally:
        client.close()
    return REDIS_SERVER_URL


def delete_keys(prefix: str, url: str = REDIS_SERVER_URL) -> None:
    client = redis_client(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
