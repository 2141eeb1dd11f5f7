"""Fixtures every suite shares: settings, a wired container with fast hashing, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import argon2
import httpx
import pytest
from alembic import command
from dependency_injector import providers

from entrypoints.cli import alembic_config
from entrypoints.container import Container, close
from entrypoints.settings import Settings
from tests import mysql_redis
from tests.http_client import in_process_client

if TYPE_CHECKING:
    from tests.rediscluster import LocalRedisCluster

SECRET = "test-secret-that-is-at-least-32-bytes-long"
# Tests that are not about limits log in and register many times from one address.
LIMITS_OFF = {"login_limits": "off", "register_limits": "off", "refresh_limits": "off", "post_limits": "off"}


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings that ignore the developer's environment and .env file."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": "memory://",
            "cache_url": "memory://",
            "jwt_secret": SECRET,
            "var_dir": tmp_path / "var",
            **LIMITS_OFF,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


def cheapest_argon2() -> argon2.PasswordHasher:
    # Below the minimum the settings accept: tests register many users.
    return argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


@pytest.fixture
def make_container(make_settings: Callable[..., Settings]) -> Callable[..., Container]:
    def make(**overrides: Any) -> Container:
        container = Container(settings=make_settings(**overrides))
        container.argon2_parameters.override(providers.Singleton(cheapest_argon2))
        return container

    return make


@pytest.fixture
async def container(make_container: Callable[..., Container]) -> AsyncIterator[Container]:
    built = make_container()
    yield built
    await close(built)


@pytest.fixture
async def client(make_container: Callable[..., Container]) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(make_container()) as http:
        yield http


# --- Real MySQL (MariaDB) and Redis: see tests/mysql_redis.py -------------------------------------


def migrate_to(url: str, revision: str = "head") -> None:
    """Runs alembic in a thread of its own: its async env starts an event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(command.upgrade, alembic_config(url), revision).result()


@pytest.fixture(scope="session")
def mysql_database() -> Iterator[str]:
    """This run's MySQL database, migrated to head; dropped at the end of the run."""
    url = mysql_redis.create_database()
    try:
        migrate_to(url)
        yield url
    finally:
        mysql_redis.drop_database(url)


@pytest.fixture
async def mysql_url(mysql_database: str) -> AsyncIterator[str]:
    """The run's migrated MySQL database, emptied after each test."""
    yield mysql_database
    await mysql_redis.empty_tables(mysql_database)


@pytest.fixture
def make_mysql_database() -> Iterator[Callable[[], str]]:
    """Empty databases of a test's own (for migrations), dropped after the test."""
    created: list[str] = []

    def make() -> str:
        created.append(mysql_redis.create_database())
        return created[-1]

    yield make
    for url in created:
        mysql_redis.drop_database(url)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return mysql_redis.check_redis()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of the test's own in the shared Redis; its keys are deleted afterwards."""
    prefix = mysql_redis.unique_name("") + ":"
    yield prefix
    mysql_redis.delete_keys(prefix, redis_url)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalRedisCluster]:
    """A 3-master Redis Cluster for the whole run (tests/rediscluster.py); tests that kill a master
    start their own."""
    from tests.rediscluster import LocalRedisCluster  # here: tests.hexpost_servers imports this module

    cluster = LocalRedisCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
