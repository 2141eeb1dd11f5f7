"""Contract section 2: conditional GET (ETag, 304) on get-posts in both APIs, and cursor pages in the
canonical one."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from dependency_injector import providers

from adapters.clock import SystemClock
from entrypoints.container import Container
from tests.e2e.helpers import (
    GET_POSTS,
    Account,
    add_post,
    assert_validation_error,
    delete_url,
    get_posts,
    register,
)
from tests.e2e.test_compat_api import add as compat_add
from tests.e2e.test_compat_api import user as compat_user
from tests.http_client import in_process_client
from tests.unit.fakes import CountingStorage, DownCache

LINK = re.compile(r'^<(/api/v1/posts/get-posts\?limit=(\d+)&after=([A-Za-z0-9_-]+))>; rel="next"$')


def conditional(account: Account, etag: str) -> dict[str, str]:
    return {**account.auth, "If-None-Match": etag}


async def test_get_posts_carries_an_etag_and_asks_clients_to_revalidate(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await add_post(client, account, "hello")
    answer = await get_posts(client, account)
    assert re.fullmatch(r'"[A-Za-z0-9_-]{22}"', answer.headers["etag"])
    assert answer.headers["cache-control"] == "private, no-cache"
    assert "link" not in answer.headers


async def test_the_current_etag_gets_304_with_no_body_from_the_cache_alone(
    make_container: Callable[..., Container],
) -> None:
    storage = CountingStorage(SystemClock())
    container = make_container()
    container.uow.override(providers.Object(storage))
    async with in_process_client(container) as http:
        account = await register(http)
        await add_post(http, account, "hello")
        etag = (await get_posts(http, account)).headers["etag"]
        before = storage.calls.total

        answer = await http.get(GET_POSTS, headers=conditional(account, etag))

        assert answer.status_code == 304
        assert answer.content == b""
        assert "content-type" not in answer.headers
        assert (answer.headers["etag"], answer.headers["x-cache"]) == (etag, "hit")
        assert answer.headers["cache-control"] == "private, no-cache"
        assert storage.calls.total == before


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
async def test_if_none_match_takes_lists_weak_tags_and_star(client: httpx.AsyncClient, form: str) -> None:
    account = await register(client)
    etag = (await get_posts(client, account)).headers["etag"]
    answer = await client.get(GET_POSTS, headers=conditional(account, form.format(etag=etag)))
    assert answer.status_code == 304


async def test_every_write_of_the_owner_changes_the_etag(client: httpx.AsyncClient) -> None:
    account = await register(client)
    etags = [(await get_posts(client, account)).headers["etag"]]
    post_id = await add_post(client, account, "one")
    after_add = await client.get(GET_POSTS, headers=conditional(account, etags[-1]))
    assert after_add.status_code == 200
    assert [post["text"] for post in after_add.json()] == ["one"]
    etags.append(after_add.headers["etag"])
    assert (await client.delete(delete_url(post_id), headers=account.auth)).status_code == 204
    after_delete = await client.get(GET_POSTS, headers=conditional(account, etags[-1]))
    assert (after_delete.status_code, after_delete.json()) == (200, [])
    etags.append(after_delete.headers["etag"])
    assert len(set(etags)) == 3


async def test_another_users_etag_is_not_mine(client: httpx.AsyncClient) -> None:
    alice, bob = await register(client), await register(client)
    alices = (await get_posts(client, alice)).headers["etag"]
    assert (await client.get(GET_POSTS, headers=conditional(bob, alices))).status_code == 200


async def test_with_the_cache_down_the_etag_comes_from_the_store(
    make_container: Callable[..., Container],
) -> None:
    container = make_container()
    container.posts_cache.override(providers.Object(DownCache()))
    async with in_process_client(container) as http:
        account = await register(http)
        await add_post(http, account, "one")
        etag = (await get_posts(http, account)).headers["etag"]
        unchanged = await http.get(GET_POSTS, headers=conditional(account, etag))
        assert (unchanged.status_code, unchanged.headers["x-cache"]) == (304, "miss")
        await add_post(http, account, "two")
        assert (await http.get(GET_POSTS, headers=conditional(account, etag))).status_code == 200


async def test_the_compatibility_api_answers_conditional_gets_too(client: httpx.AsyncClient) -> None:
    token = await compat_user(client)
    await compat_add(client, token, "hello")
    first = await client.get("/posts/GetPosts", params={"token": token})
    assert first.headers["cache-control"] == "private, no-cache"
    unchanged = await client.get(
        "/posts/GetPosts", params={"token": token}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    await compat_add(client, token, "again")
    changed = await client.get(
        "/posts/GetPosts", params={"token": token}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert changed.status_code == 200
    assert len(changed.json()) == 2


# Pages


async def page(client: httpx.AsyncClient, account: Account, url: str) -> tuple[list[str], str | None]:
    answer = await client.get(url, headers=account.auth)
    assert answer.status_code == 200, answer.text
    link = answer.headers.get("link")
    if link is None:
        return [post["text"] for post in answer.json()], None
    match = LINK.fullmatch(link)
    assert match is not None, link
    return [post["text"] for post in answer.json()], match.group(1)


async def test_pages_follow_link_headers_to_the_end(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for number in range(5):
        await add_post(client, account, str(number))
    url: str | None = f"{GET_POSTS}?limit=2"
    pages = []
    while url is not None:
        texts, url = await page(client, account, url)
        pages.append(texts)
    assert pages == [["0", "1"], ["2", "3"], ["4"]]
    whole, link = await page(client, account, GET_POSTS)
    assert (whole, link) == (["0", "1", "2", "3", "4"], None)


async def test_a_walk_survives_deletes_before_at_and_after_its_cursor(client: httpx.AsyncClient) -> None:
    account = await register(client)
    ids = [await add_post(client, account, str(number)) for number in range(8)]
    first, url = await page(client, account, f"{GET_POSTS}?limit=3")
    assert first == ["0", "1", "2"]
    assert url is not None
    for post_id in (ids[0], ids[2], ids[3]):
        assert (await client.delete(delete_url(post_id), headers=account.auth)).status_code == 204
    second, url = await page(client, account, url)
    assert second == ["4", "5", "6"]
    assert url is not None
    await add_post(client, account, "8")
    third, url = await page(client, account, url)
    assert (third, url) == (["7", "8"], None)


async def test_pages_carry_etags_and_answer_304(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for number in range(3):
        await add_post(client, account, str(number))
    first = await client.get(f"{GET_POSTS}?limit=2", headers=account.auth)
    whole = await get_posts(client, account)
    assert first.headers["etag"] != whole.headers["etag"]
    again = await client.get(f"{GET_POSTS}?limit=2", headers=conditional(account, first.headers["etag"]))
    assert (again.status_code, again.headers["link"]) == (304, first.headers["link"])


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "1.5", "two", "", "٣", "9" * 5000])
async def test_a_bad_limit_is_422(client: httpx.AsyncClient, limit: str) -> None:
    account = await register(client)
    answer = await client.get(GET_POSTS, params={"limit": limit}, headers=account.auth)
    assert_validation_error(answer, ["query", "limit"])


async def test_limits_from_1_to_1000_are_taken(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await add_post(client, account, "one")
    for limit in ("1", "1000"):
        answer = await client.get(GET_POSTS, params={"limit": limit}, headers=account.auth)
        assert (answer.status_code, len(answer.json())) == (200, 1)


async def test_a_repeated_parameter_is_422(client: httpx.AsyncClient) -> None:
    account = await register(client)
    answer = await client.get(f"{GET_POSTS}?limit=1&limit=2", headers=account.auth)
    assert_validation_error(answer, ["query", "limit"])


async def test_a_tampered_or_foreign_cursor_is_422_never_another_users_posts(
    client: httpx.AsyncClient,
) -> None:
    alice, bob = await register(client), await register(client)
    for number in range(3):
        await add_post(client, alice, f"alice {number}")
        await add_post(client, bob, f"bob {number}")
    _, url = await page(client, alice, f"{GET_POSTS}?limit=1")
    assert url is not None
    cursor = url.rpartition("after=")[2]
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    for bad in (flipped, cursor[:-1], cursor + "A", "", "not a cursor", "=" * 43):
        answer = await client.get(GET_POSTS, params={"limit": "1", "after": bad}, headers=alice.auth)
        assert_validation_error(answer, ["query", "after"])
    foreign = await client.get(GET_POSTS, params={"limit": "1", "after": cursor}, headers=bob.auth)
    assert_validation_error(foreign, ["query", "after"])


async def test_after_without_limit_is_422(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for number in range(2):
        await add_post(client, account, str(number))
    _, url = await page(client, account, f"{GET_POSTS}?limit=1")
    assert url is not None
    answer = await client.get(GET_POSTS, params={"after": url.rpartition("after=")[2]}, headers=account.auth)
    assert_validation_error(answer, ["query", "limit"])
