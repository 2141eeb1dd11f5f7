"""The HTTP walk-through, ownership, caching and 1 MB cases, against every backend configuration:
memory://, SQLite with the in-process cache, and the production shape, MySQL with Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from entrypoints.container import Container
from tests.http_client import in_process_client

ONE_MIB_OF_EMOJI = "😀" * (1_048_576 // 4)


@pytest.fixture
async def client(
    backend_settings: dict[str, str], make_container: Callable[..., Container]
) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(make_container(**backend_settings)) as http:
        yield http


async def register(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    answer = await client.post("/api/v1/users/register", json={"email": email, "password": "correct horse"})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def add(client: httpx.AsyncClient, auth: dict[str, str], text: str) -> int:
    answer = await client.post("/api/v1/posts/add-post", json={"text": text}, headers=auth)
    assert answer.status_code == 200, answer.text
    post_id: int = answer.json()["PostID"]
    return post_id


async def texts(client: httpx.AsyncClient, auth: dict[str, str]) -> tuple[str, list[str]]:
    answer = await client.get("/api/v1/posts/get-posts", headers=auth)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-cache"], [post["text"] for post in answer.json()]


async def test_register_log_in_add_list_and_delete(client: httpx.AsyncClient) -> None:
    await register(client, "Alice@Example.com")
    login = await client.post(
        "/api/v1/users/login", data={"username": "alice@example.com", "password": "correct horse"}
    )
    assert login.status_code == 200
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    first = await add(client, auth, "hello")
    await add(client, auth, "world")
    assert await texts(client, auth) == ("miss", ["hello", "world"])
    assert await texts(client, auth) == ("hit", ["hello", "world"])
    deleted = await client.delete(f"/api/v1/posts/delete-post/{first}", headers=auth)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert await texts(client, auth) == ("miss", ["world"])


async def test_a_user_neither_sees_nor_deletes_someone_elses_posts(client: httpx.AsyncClient) -> None:
    alice = await register(client, "alice@example.com")
    mallory = await register(client, "mallory@example.com")
    post_id = await add(client, alice, "alice's")
    assert await texts(client, mallory) == ("miss", [])
    attempt = await client.delete(f"/api/v1/posts/delete-post/{post_id}", headers=mallory)
    assert (attempt.status_code, attempt.json()) == (404, {"detail": "Post not found"})
    assert (await texts(client, alice))[1] == ["alice's"]


async def test_each_write_of_the_owner_invalidates_their_cached_list(client: httpx.AsyncClient) -> None:
    auth = await register(client, "writer@example.com")
    other = await register(client, "reader@example.com")
    await add(client, other, "unrelated")
    assert await texts(client, other) == ("miss", ["unrelated"])
    expected: list[str] = []
    for number in range(3):
        assert (await texts(client, auth))[1] == expected
        assert await texts(client, auth) == ("hit", expected)
        await add(client, auth, f"post {number}")
        expected.append(f"post {number}")
        assert await texts(client, auth) == ("miss", expected)
    # Another user's writes leave this list cached, and this user's leave theirs.
    assert await texts(client, other) == ("hit", ["unrelated"])


async def test_a_mebibyte_of_emoji_round_trips_and_one_byte_more_is_413(client: httpx.AsyncClient) -> None:
    auth = await register(client, "big@example.com")
    await add(client, auth, ONE_MIB_OF_EMOJI)
    for _ in range(2):  # from the database, then from the cache
        answer = await client.get("/api/v1/posts/get-posts", headers=auth)
        assert answer.json()[0]["text"].encode() == ONE_MIB_OF_EMOJI.encode()
    too_big = await client.post("/api/v1/posts/add-post", json={"text": ONE_MIB_OF_EMOJI + "x"}, headers=auth)
    assert (too_big.status_code, too_big.json()) == (413, {"detail": "Text exceeds 1 MB size limit"})


async def test_emails_are_one_account_in_any_case_but_accents_make_another(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "jose@example.com")
    again = await client.post(
        "/api/v1/users/register", json={"email": "JOSE@Example.com", "password": "correct horse"}
    )
    assert (again.status_code, again.json()) == (400, {"detail": "User already exists"})
    await register(client, "josé@example.com")


async def test_concurrent_adds_all_succeed_and_list_with_times_in_commit_order(
    backend_settings: dict[str, str], make_container: Callable[..., Container]
) -> None:
    """64 writers at once (one user, as a bench does): none fails on a lock or a full pool, and the
    list's times never decrease, also read in id order: each post was stamped in commit order."""
    async with in_process_client(make_container(**backend_settings, post_limits="off")) as client:
        auth = await register(client, "busy@example.com")
        ids = await asyncio.gather(*(add(client, auth, f"post {number}") for number in range(64)))
        answer = await client.get("/api/v1/posts/get-posts", headers=auth)

    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert [post["id"] for post in listed] == sorted(ids)
    times = [post["created_at"] for post in listed]
    assert times == sorted(times)
