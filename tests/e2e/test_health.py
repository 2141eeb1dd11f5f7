"""Probes: /healthz says the process answers; /readyz says whether its database and cache do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from dependency_injector import providers
from starlette.applications import Starlette

from application.errors import CacheUnavailable
from domain.errors import StorageUnavailable
from entrypoints.container import Container
from entrypoints.http.health import Health
from tests.http_client import in_process_client

Ping = Callable[[], Awaitable[None]]
MakeClient = Callable[[Ping, Ping], AbstractAsyncContextManager[httpx.AsyncClient]]


async def _fine() -> None:
    return None


async def _database_down() -> None:
    raise StorageUnavailable("connection refused")


async def _cache_down() -> None:
    raise CacheUnavailable("connection refused")


@pytest.fixture
def app_client(make_container: Callable[..., Container]) -> MakeClient:
    """A client of the app whose readiness probes of the store and the cache are the given fakes."""

    @asynccontextmanager
    async def make(database: Ping, cache: Ping) -> AsyncIterator[httpx.AsyncClient]:
        container = make_container()
        container.readiness.override(providers.Object({"database": database, "cache": cache}))
        async with in_process_client(container) as http:
            yield http

    return make


async def test_healthz_is_ok_even_when_both_dependencies_are_down(app_client: MakeClient) -> None:
    async with app_client(_database_down, _cache_down) as client:
        answer = await client.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert answer.headers["content-type"].startswith("application/json")


async def test_readyz_is_ok_when_database_and_cache_answer(app_client: MakeClient) -> None:
    async with app_client(_fine, _fine) as client:
        answer = await client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}


@pytest.mark.parametrize(
    ("database", "cache", "checks"),
    [
        (_fine, _cache_down, {"database": "ok", "cache": "unavailable"}),
        (_database_down, _fine, {"database": "unavailable", "cache": "ok"}),
        (_database_down, _cache_down, {"database": "unavailable", "cache": "unavailable"}),
    ],
)
async def test_readyz_is_503_naming_the_component_that_is_down(
    app_client: MakeClient, database: Ping, cache: Ping, checks: dict[str, str]
) -> None:
    async with app_client(database, cache) as client:
        answer = await client.get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["retry-after"].isdigit()
    body = answer.json()
    assert (body["status"], body["checks"]) == ("unavailable", checks)
    failing = [name for name, state in checks.items() if state != "ok"]
    assert body["detail"] == f"Not ready: {', '.join(failing)} unavailable"


async def test_readyz_answers_within_its_timeout_when_a_ping_hangs() -> None:
    async def hangs() -> None:
        await asyncio.sleep(60)

    health = Health({"database": _fine, "cache": hangs}, timeout_seconds=0.1)
    transport = httpx.ASGITransport(app=Starlette(routes=health.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://hexpost.test") as client:
        started = time.monotonic()
        answer = await client.get("/readyz")
        elapsed = time.monotonic() - started
    assert elapsed < 1
    assert answer.status_code == 503
    assert answer.json()["checks"] == {"database": "ok", "cache": "unavailable"}
