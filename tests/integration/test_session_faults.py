"""Ending a session holds through the cache's failures: a Redis restarted, or down, between a logout
and the next request never makes the ended session valid again. The database is the truth."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import httpx
import pytest

from entrypoints.container import Container
from tests.http_client import in_process_client
from tests.integration.faults import RedisProcess

pytestmark = [pytest.mark.mysql, pytest.mark.redis]

API = "/api/v1"
COOL_DOWN = 1.1  # seconds: past the cache's cool-down after a Redis failure


@pytest.fixture
async def processes(
    make_container: Callable[..., Container], mysql_url: str, own_redis: RedisProcess, redis_prefix: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Clients of two server processes (a container each) on one MariaDB and the test's own Redis."""
    async with AsyncExitStack() as stack:
        first, second = [
            await stack.enter_async_context(
                in_process_client(
                    make_container(
                        database_url=mysql_url, cache_url=own_redis.url, cache_key_prefix=redis_prefix
                    ),
                    base_url=f"http://{name}",
                )
            )
            for name in ("first", "second")
        ]
        yield first, second


async def signed_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    answer = await client.post(f"{API}/users/register", json={"email": email, "password": "correct horse"})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def read(client: httpx.AsyncClient, auth: dict[str, str]) -> tuple[int, str | None]:
    answer = await client.get(f"{API}/posts/get-posts", headers=auth)
    return answer.status_code, answer.headers.get("x-cache")


async def test_a_redis_restart_between_a_logout_and_the_next_request_keeps_the_session_ended(
    processes: tuple[httpx.AsyncClient, httpx.AsyncClient], own_redis: RedisProcess
) -> None:
    first, second = processes
    auth = await signed_in(first, "restart@example.com")
    other = await signed_in(first, "bystander@example.com")
    for client in (first, second):
        assert await read(client, auth) in {(200, "miss"), (200, "hit")}
        assert await read(client, auth) == (200, "hit")  # token remembered, session vouched for

    assert (await first.post(f"{API}/users/logout", headers=auth)).status_code == 204
    own_redis.kill()
    own_redis.start()

    await asyncio.sleep(COOL_DOWN)
    assert await read(second, auth) == (401, None)
    assert await read(first, auth) == (401, None)
    assert (await read(second, other))[0] == 200


async def test_with_redis_down_the_session_check_falls_back_to_the_database(
    processes: tuple[httpx.AsyncClient, httpx.AsyncClient], own_redis: RedisProcess
) -> None:
    first, second = processes
    auth = await signed_in(first, "down@example.com")
    assert await read(second, auth) == (200, "miss")
    assert await read(second, auth) == (200, "hit")

    own_redis.kill()
    assert await read(second, auth) == (200, "miss")
    assert (await first.post(f"{API}/users/logout", headers=auth)).status_code == 204

    assert await read(second, auth) == (401, None)
    own_redis.start()
    await asyncio.sleep(COOL_DOWN)
    assert await read(second, auth) == (401, None)
    assert await read(first, auth) == (401, None)
