"""The service on a Redis Cluster of the test's own (tests/rediscluster.py): two processes share it
and a SQLite database; one master is killed mid-run and brought back empty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis.crc import key_slot

from entrypoints.container import Container, close
from tests import mysql_redis
from tests.conftest import migrate_to
from tests.e2e.helpers import ADD_POST, GET_POSTS, Account, register
from tests.http_client import in_process_client
from tests.rediscluster import MASTERS, LocalRedisCluster

pytestmark = pytest.mark.redis


@pytest.fixture
def own_cluster() -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def processes(
    make_container: Callable[..., Container], own_cluster: LocalRedisCluster, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two clients of two containers wired like two server processes."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'cluster.db'}"
    migrate_to(database_url)
    containers = [make_container(database_url=database_url, cache_url=own_cluster.url) for _ in range(2)]
    async with (
        in_process_client(containers[0], close_container=False) as one,
        in_process_client(containers[1], base_url="http://b", close_container=False) as two,
    ):
        yield one, two
    for container in containers:
        await close(container)


def master_of(cluster: LocalRedisCluster, account: Account) -> int:
    # The cache's keys carry the hash tag {u<id>}: Redis hashes only what is inside the braces.
    return cluster.owner_of(key_slot(f"u{account.id}".encode()))


async def texts(client: httpx.AsyncClient, account: Account) -> tuple[str, list[str]]:
    answer = await client.get(GET_POSTS, headers=account.auth)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-cache"], [post["text"] for post in answer.json()]


async def add(client: httpx.AsyncClient, account: Account, text: str) -> None:
    answer = await client.post(ADD_POST, json={"text": text}, headers=account.auth)
    assert answer.status_code == 200, answer.text


async def test_a_master_killed_mid_run_costs_cache_hits_never_errors_or_stale_lists(
    own_cluster: LocalRedisCluster, processes: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    one, two = processes
    accounts: list[Account] = []
    while {master_of(own_cluster, account) for account in accounts} != set(range(MASTERS)):
        accounts.append(await register(one))
    masters = {account.id: master_of(own_cluster, account) for account in accounts}
    written: dict[int, list[str]] = {account.id: [] for account in accounts}
    for account in accounts:
        await add(one, account, "before")
        written[account.id].append("before")
        assert await texts(two, account) == ("miss", ["before"])
        assert await texts(one, account) == ("hit", ["before"])

    victim = masters[accounts[0].id]
    own_cluster.kill(victim)
    for round_ in range(3):
        for account in accounts:
            await add(one, account, f"down {round_}")
            written[account.id].append(f"down {round_}")
            cache, listed = await texts(two, account)
            assert listed == written[account.id]
            if masters[account.id] == victim:
                assert cache == "miss"
            assert (await texts(one, account))[1] == written[account.id]

    own_cluster.restart(victim)
    for account in accounts:
        await add(two, account, "after")
        written[account.id].append("after")
        assert (await texts(one, account))[1] == written[account.id]
    for account in accounts:
        assert (await texts(two, account))[1] == written[account.id]
    # Once the cluster answers again and the cool-down is over, lists are cached again.
    cached = 0
    for _ in range(40):
        cached = 0
        for account in accounts:
            cache, listed = await texts(one, account)
            assert listed == written[account.id]
            cached += cache == "hit"
        if cached == len(accounts):
            break
        await asyncio.sleep(0.1)
    assert cached == len(accounts)


@pytest.fixture
async def two_processes(
    make_container: Callable[..., Container], redis_cluster: LocalRedisCluster, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two containers wired like two server processes on the run's cluster and one SQLite file."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'etag.db'}"
    migrate_to(database_url)
    prefix = mysql_redis.unique_name("") + ":"
    containers = [
        make_container(database_url=database_url, cache_url=redis_cluster.url, cache_key_prefix=prefix)
        for _ in range(2)
    ]
    async with (
        in_process_client(containers[0], close_container=False) as one,
        in_process_client(containers[1], base_url="http://b", close_container=False) as two,
    ):
        yield one, two
    for container in containers:
        await close(container)


async def test_a_write_through_one_process_changes_the_etag_the_other_answers_with(
    two_processes: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    one, two = two_processes
    account = await register(one)
    await add(one, account, "first")
    etag = (await one.get(GET_POSTS, headers=account.auth)).headers["etag"]
    unchanged = await two.get(GET_POSTS, headers={**account.auth, "If-None-Match": etag})
    assert (unchanged.status_code, unchanged.headers["x-cache"]) == (304, "hit")

    await add(two, account, "second")
    changed = await one.get(GET_POSTS, headers={**account.auth, "If-None-Match": etag})
    assert changed.status_code == 200
    assert [post["text"] for post in changed.json()] == ["first", "second"]
    assert changed.headers["etag"] != etag
