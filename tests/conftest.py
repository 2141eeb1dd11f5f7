"""Fixtures every suite shares: settings, a wired container with fast hashing, an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import argon2
import httpx
import pytest
from dependency_injector import providers

from adapters.passwords import Argon2PasswordHasher
from entrypoints.container import Container, close
from entrypoints.http.app import create_app
from entrypoints.settings import Settings

SECRET = "test-secret-that-is-at-least-32-bytes-long"


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings that ignore the developer's environment and .env file."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": "memory://",
            "cache_url": "memory://",
            "jwt_secret": SECRET,
            "var_dir": tmp_path / "var",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


def fast_hasher() -> Argon2PasswordHasher:
    # The real adapter, with the cheapest argon2id parameters: tests register many users.
    return Argon2PasswordHasher(
        argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1), max_concurrency=2
    )


@pytest.fixture
def make_container(make_settings: Callable[..., Settings]) -> Callable[..., Container]:
    def make(**overrides: Any) -> Container:
        container = Container(settings=make_settings(**overrides))
        container.password_hasher.override(providers.Singleton(fast_hasher))
        return container

    return make


@pytest.fixture
async def container(make_container: Callable[..., Container]) -> AsyncIterator[Container]:
    built = make_container()
    yield built
    await close(built)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hexpost.test") as http:
        yield http
