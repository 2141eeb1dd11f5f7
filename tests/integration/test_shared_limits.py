"""Limits shared through Redis: two server processes on MariaDB and Redis enforce one limit; with
Redis killed, each process goes on enforcing them alone, with no 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from entrypoints.container import Container, close
from entrypoints.http.app import create_app
from tests.e2e.helpers import LOGIN, PASSWORD, REGISTER, unique_email
from tests.hexpost_servers import servers_sharing
from tests.integration.faults import RedisProcess


def wrong(email: str) -> dict[str, str]:
    return {"email": email, "password": "wrong password"}


@pytest.fixture
def two_servers(mysql_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[list[str]]:
    limits = {
        "HEXPOST_LOGIN_LIMITS": "account_address: 5/15 minutes; account: 50/hour; address: 100/hour",
        "HEXPOST_REGISTER_LIMITS": "4/hour",
    }
    with servers_sharing(tmp_path, mysql_url, redis_url, redis_prefix, limits, limits) as urls:
        yield urls


@pytest.mark.mysql
@pytest.mark.redis
@pytest.mark.slow
async def test_two_processes_enforce_one_limit_through_redis(two_servers: list[str]) -> None:
    async with (
        httpx.AsyncClient(base_url=two_servers[0], timeout=30) as first,
        httpx.AsyncClient(base_url=two_servers[1], timeout=30) as second,
    ):
        email = unique_email()
        for n in range(5):
            answer = await (first if n % 2 else second).post(LOGIN, json=wrong(email))
            assert answer.status_code == 404
        for server in (first, second):
            refused = await server.post(LOGIN, json=wrong(email))
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1

        statuses = [
            (await server.post(REGISTER, json={"email": unique_email(), "password": PASSWORD})).status_code
            for server in (first, second, first, second, first, second)
        ]
        assert statuses == [201] * 4 + [429] * 2


@pytest.fixture
async def app_on_own_redis(
    make_container: Callable[..., Container], own_redis: RedisProcess
) -> AsyncIterator[tuple[httpx.AsyncClient, RedisProcess]]:
    container = make_container(
        cache_url=own_redis.url,
        login_limits="account_address: 3/15 minutes; account: off; address: off",
        register_limits="3/hour",
    )
    transport = httpx.ASGITransport(app=create_app(container), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hexpost.test") as client:
            yield client, own_redis
    finally:
        await close(container)


@pytest.mark.redis
async def test_with_redis_killed_each_process_still_enforces_the_limits_without_5xx(
    app_on_own_redis: tuple[httpx.AsyncClient, RedisProcess],
) -> None:
    client, redis = app_on_own_redis
    email = unique_email()
    assert (await client.post(LOGIN, json=wrong(email))).status_code == 404
    assert (
        await client.post(REGISTER, json={"email": unique_email(), "password": PASSWORD})
    ).status_code == 201

    redis.kill()

    # The counts Redis held are gone with it; the process counts afresh, and never lets more through.
    logins = [(await client.post(LOGIN, json=wrong(email))).status_code for _ in range(5)]
    registrations = [
        (await client.post(REGISTER, json={"email": unique_email(), "password": PASSWORD})).status_code
        for _ in range(5)
    ]
    assert logins == [404] * 3 + [429] * 2
    assert registrations == [201] * 3 + [429] * 2
