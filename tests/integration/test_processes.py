"""Several server processes on one MariaDB and one Redis: what one acknowledges, the other serves
on the very next request, while other clients keep reading from both."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.hexpost_servers import servers_sharing

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.slow]

ROUNDS = 12


@pytest.fixture
def servers(mysql_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two `hexpost serve` processes, the first with HEXPOST_WORKERS=2; their base URLs."""
    with servers_sharing(
        tmp_path, mysql_url, redis_url, redis_prefix, {"HEXPOST_WORKERS": "2"}, {"HEXPOST_WORKERS": "1"}
    ) as urls:
        yield urls


async def test_a_write_through_one_process_is_read_through_the_other_at_once(servers: list[str]) -> None:
    first_url, second_url = servers
    async with (
        httpx.AsyncClient(base_url=first_url, timeout=30) as first,
        httpx.AsyncClient(base_url=second_url, timeout=30) as second,
    ):
        registered = await first.post(
            "/api/v1/users/register", json={"email": "multi@example.com", "password": "correct horse"}
        )
        assert registered.status_code == 201
        auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        stop = asyncio.Event()
        reads: list[int] = []

        async def keep_reading(client: httpx.AsyncClient) -> None:
            while not stop.is_set():
                answer = await client.get("/api/v1/posts/get-posts", headers=auth)
                assert answer.status_code == 200
                reads.append(answer.status_code)

        async def ids(client: httpx.AsyncClient) -> list[int]:
            answer = await client.get("/api/v1/posts/get-posts", headers=auth)
            assert answer.status_code == 200
            return [post["id"] for post in answer.json()]

        readers = [asyncio.create_task(keep_reading(client)) for client in (first, second, first, second)]
        try:
            for number in range(ROUNDS):
                writer, reader = (first, second) if number % 2 == 0 else (second, first)
                added = await writer.post(
                    "/api/v1/posts/add-post", json={"text": f"post {number}"}, headers=auth
                )
                assert added.status_code == 200
                post_id = added.json()["PostID"]
                assert post_id in await ids(reader)
                assert post_id in await ids(writer)
                deleted = await reader.delete(f"/api/v1/posts/delete-post/{post_id}", headers=auth)
                assert deleted.status_code == 204
                assert post_id not in await ids(writer)
                assert post_id not in await ids(reader)
        finally:
            stop.set()
            await asyncio.gather(*readers)
        assert len(reads) > ROUNDS


async def test_a_logout_through_one_process_is_honoured_by_the_next_request_through_the_other(
    servers: list[str],
) -> None:
    first_url, second_url = servers
    async with (
        httpx.AsyncClient(base_url=first_url, timeout=30) as first,
        httpx.AsyncClient(base_url=second_url, timeout=30) as second,
    ):
        registered = await first.post(
            "/api/v1/users/register", json={"email": "logout@example.com", "password": "correct horse"}
        )
        assert registered.status_code == 201
        auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        for _ in range(3):  # the second process verifies the token, remembers it, caches the list
            assert (await second.get("/api/v1/posts/get-posts", headers=auth)).status_code == 200

        assert (await first.post("/api/v1/users/logout", headers=auth)).status_code == 204

        after = await second.get("/api/v1/posts/get-posts", headers=auth)
        assert (after.status_code, after.headers["www-authenticate"]) == (401, "Bearer")
        assert (
            await second.post("/api/v1/posts/add-post", json={"text": "x"}, headers=auth)
        ).status_code == 401
        assert (await first.get("/api/v1/posts/get-posts", headers=auth)).status_code == 401
