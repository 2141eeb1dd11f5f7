"""Fixtures of the integration suites: every backend configuration for one HTTP test, and a Redis
of a test's own that it may kill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import migrate_to
from tests.integration.faults import RedisProcess


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A `redis-server` of the test's own, killed afterwards."""
    redis = RedisProcess()
    redis.start()
    yield redis
    redis.kill()


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("mysql+redis", marks=[pytest.mark.mysql, pytest.mark.redis]),
    ]
)
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "memory":
        return {}
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}"
        migrate_to(url)
        return {"database_url": url}
    return {
        "database_url": request.getfixturevalue("mysql_url"),
        "cache_url": request.getfixturevalue("redis_url"),
        "cache_key_prefix": request.getfixturevalue("redis_prefix"),
    }
