"""bootstrap(): what the configuration names is opened in one place and closed by one call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from adapters.clock import SystemClock
from adapters.sqlalchemy.engine import SqlUnitsOfWork
from domain.users import Password
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings, parse_rates
from tests.conftest import cheapest_argon2, migrate_to


async def test_the_embedded_default_opens_sqlite_and_closes_its_pool_and_hashing_threads(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'hexpost.db'}"
    migrate_to(url)
    infrastructure = bootstrap(make_settings(database_url=url), SystemClock(), cheapest_argon2())
    assert isinstance(infrastructure.uow, SqlUnitsOfWork)
    assert infrastructure.redis is None
    for probe in infrastructure.probes.values():
        await probe()
    await infrastructure.password_hasher.hash(Password("correct horse"))
    engine = infrastructure.engine
    assert engine is not None
    assert engine.pool.checkedin() > 0  # type: ignore[attr-defined]

    await infrastructure.aclose()

    assert engine.pool.checkedin() == 0  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="shutdown"):
        await infrastructure.password_hasher.hash(Password("correct horse"))


async def test_sqlite_connections_keep_a_small_page_cache_and_wait_for_other_processes_locks(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Long posts pass through a connection's page cache: a large one would be kept full for as long
    as the process runs."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hexpost.db'}"
    migrate_to(url)
    infrastructure = bootstrap(make_settings(database_url=url), SystemClock(), cheapest_argon2())
    engine = infrastructure.engine
    assert engine is not None
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("cache_size", "journal_mode", "foreign_keys", "busy_timeout")
            }
    finally:
        await infrastructure.aclose()

    assert pragmas == {"cache_size": -256, "journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000}


@pytest.mark.mysql
@pytest.mark.redis
async def test_mysql_and_redis_are_probed_and_their_connections_closed(
    make_settings: Callable[..., Settings], mysql_url: str, redis_url: str, redis_prefix: str
) -> None:
    settings = make_settings(database_url=mysql_url, cache_url=redis_url, cache_key_prefix=redis_prefix)
    infrastructure = bootstrap(settings, SystemClock(), cheapest_argon2())
    for probe in infrastructure.probes.values():
        await probe()
    assert await infrastructure.limiter.hit("bootstrap-test", parse_rates("5/minute"), "key") is None
    redis = infrastructure.redis
    assert redis is not None
    name = f"{redis_prefix}bootstrap"
    await redis.client_setname(name)

    await infrastructure.aclose()

    clients = await _client_names(redis_url)
    assert name not in clients
    engine = infrastructure.engine
    assert engine is not None
    assert engine.pool.checkedin() == 0  # type: ignore[attr-defined]


async def _client_names(redis_url: str) -> list[str]:
    observer = Redis.from_url(redis_url)
    try:
        return [client["name"] for client in await observer.client_list()]
    finally:
        await observer.aclose()
