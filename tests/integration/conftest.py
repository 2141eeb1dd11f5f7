"""Fixtures of the suites that run one HTTP test against every backend configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import migrate_to


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
