"""The canonical API (contract section 2) over HTTP, in process, on the embedded default backends."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from dependency_injector import providers

from adapters.clock import SystemClock
from application.ports import PostsCache
from domain.ports import UnitOfWorkFactory
from entrypoints.container import Container
from tests.e2e.helpers import (
    ADD_POST,
    GET_POSTS,
    LOGIN,
    PASSWORD,
    REGISTER,
    add_post,
    assert_detail,
    assert_json,
    bearer,
    delete_url,
    get_posts,
    register,
    texts,
    unique_email,
)
from tests.http_client import in_process_client
from tests.unit.fakes import CountingStorage, DownCache, DownUnitOfWork

MAX_POST_BYTES = 1_048_576
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client_with(make_container: Callable[..., Container]) -> MakeClient:
    """A client of an app whose storage and/or cache are replaced by the given fakes."""

    @asynccontextmanager
    async def make(
        uow: UnitOfWorkFactory | None = None, cache: PostsCache | None = None
    ) -> AsyncIterator[httpx.AsyncClient]:
        container = make_container()
        if uow is not None:
            container.uow.override(providers.Object(uow))
        if cache is not None:
            container.posts_cache.override(providers.Object(cache))
        async with in_process_client(container) as http:
            yield http

    return make


# --- register and log in ------------------------------------------------------------------------

TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"}


async def test_register_answers_201_with_the_account_and_a_working_token(client: httpx.AsyncClient) -> None:
    answer = await client.post(REGISTER, json={"email": "new@example.com", "password": PASSWORD})

    assert answer.status_code == 201
    body = assert_json(answer)
    assert set(body) == {"id", "email", *TOKEN_FIELDS}
    assert isinstance(body["id"], int)
    assert body["email"] == "new@example.com"
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert body["refresh_expires_in"] == 1_209_600
    assert (await client.get(GET_POSTS, headers=bearer(body["access_token"]))).status_code == 200


async def test_register_never_returns_the_password_or_its_hash(client: httpx.AsyncClient) -> None:
    answer = await client.post(REGISTER, json={"email": unique_email(), "password": PASSWORD})

    assert PASSWORD not in answer.text
    assert "argon2" not in answer.text


async def test_register_trims_and_lower_cases_the_email(client: httpx.AsyncClient) -> None:
    account = await register(client, email="  Mixed.Case@Example.COM  ")

    assert account.email == "mixed.case@example.com"


async def test_registering_the_same_email_in_another_case_is_400(client: httpx.AsyncClient) -> None:
    await register(client, email="twin@example.com")

    again = await client.post(REGISTER, json={"email": " TWIN@Example.com", "password": "another password"})

    assert_detail(again, 400, "User already exists")


async def test_login_with_json_gives_a_bearer_token(client: httpx.AsyncClient) -> None:
    account = await register(client)

    answer = await client.post(LOGIN, json={"email": account.email, "password": PASSWORD})

    assert answer.status_code == 200
    body = assert_json(answer)
    assert set(body) == TOKEN_FIELDS
    assert (body["token_type"], body["expires_in"]) == ("bearer", 1800)
    assert (await client.get(GET_POSTS, headers=bearer(body["access_token"]))).status_code == 200


async def test_login_with_the_oauth2_password_form_gives_a_bearer_token(client: httpx.AsyncClient) -> None:
    account = await register(client)

    answer = await client.post(LOGIN, data={"username": account.email, "password": PASSWORD})

    assert answer.status_code == 200
    assert (await client.get(GET_POSTS, headers=bearer(answer.json()["access_token"]))).status_code == 200


async def test_login_with_a_multipart_form_gives_a_bearer_token(client: httpx.AsyncClient) -> None:
    account = await register(client)

    answer = await client.post(LOGIN, files={"username": (None, account.email), "password": (None, PASSWORD)})

    assert answer.status_code == 200
    assert answer.json()["token_type"] == "bearer"


async def test_login_compares_the_email_case_insensitively(client: httpx.AsyncClient) -> None:
    await register(client, email="casey@example.com")

    answer = await client.post(LOGIN, json={"email": "  CASEY@EXAMPLE.com ", "password": PASSWORD})

    assert answer.status_code == 200


async def test_unknown_email_and_wrong_password_get_the_same_answer(client: httpx.AsyncClient) -> None:
    account = await register(client)

    unknown = await client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD})
    wrong = await client.post(LOGIN, json={"email": account.email, "password": "wrong password"})

    assert_detail(unknown, 404, "Invalid email or password")
    assert (unknown.status_code, unknown.content) == (wrong.status_code, wrong.content)
    assert sorted(unknown.headers.keys()) == sorted(wrong.headers.keys())


async def test_the_password_is_taken_exactly_as_sent(client: httpx.AsyncClient) -> None:
    spaced = "  spaces around  "
    account = await register(client, password=spaced)

    trimmed = await client.post(LOGIN, json={"email": account.email, "password": spaced.strip()})
    exact = await client.post(LOGIN, json={"email": account.email, "password": spaced})

    assert_detail(trimmed, 404, "Invalid email or password")
    assert exact.status_code == 200


@pytest.mark.parametrize(
    "password",
    ["8 chars!", "p" * 128, "😀" * 128, "ünïcödé-pässwörd", "tab\there\nnewline", '"quotes" \\ back'],
    ids=["min", "max", "emoji-max", "accents", "control", "json-specials"],
)
async def test_any_password_of_8_to_128_characters_registers_and_logs_in(
    client: httpx.AsyncClient, password: str
) -> None:
    account = await register(client, password=password)

    answer = await client.post(LOGIN, json={"email": account.email, "password": password})

    assert answer.status_code == 200


async def test_register_ignores_an_id_and_privileges_sent_along(client: httpx.AsyncClient) -> None:
    first = await register(client)
    answer = await client.post(
        REGISTER,
        json={
            "email": unique_email(),
            "password": PASSWORD,
            "id": first.id,
            "is_superuser": True,
            "password_hash": "$argon2id$forged",
        },
    )

    assert answer.status_code == 201
    assert answer.json()["id"] != first.id
    assert set(answer.json()) == {"id", "email", *TOKEN_FIELDS}
    login = await client.post(LOGIN, json={"email": answer.json()["email"], "password": PASSWORD})
    assert login.status_code == 200


# --- posts --------------------------------------------------------------------------------------


async def test_add_post_answers_with_the_new_posts_id(client: httpx.AsyncClient) -> None:
    account = await register(client)

    answer = await client.post(ADD_POST, json={"text": "hello"}, headers=account.auth)

    assert answer.status_code == 200
    body = assert_json(answer)
    assert set(body) == {"PostID", "detail"}
    assert isinstance(body["PostID"], int)
    assert body["detail"] == "Post created"


async def test_get_posts_lists_the_users_posts_oldest_first_in_the_contracts_shape(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    ids = [await add_post(client, account, text) for text in ("first", "second", "third")]

    posts = assert_json(await get_posts(client, account))

    assert [post["id"] for post in posts] == ids
    assert [post["text"] for post in posts] == ["first", "second", "third"]
    for post in posts:
        assert set(post) == {"id", "text", "created_at"}
        assert TIMESTAMP.match(post["created_at"]), post["created_at"]
    assert [post["created_at"] for post in posts] == sorted(post["created_at"] for post in posts)


async def test_a_new_user_has_no_posts(client: httpx.AsyncClient) -> None:
    account = await register(client)

    answer = await get_posts(client, account)

    assert answer.json() == []


async def test_a_user_sees_only_their_own_posts(client: httpx.AsyncClient) -> None:
    alice, bob = await register(client), await register(client)
    await add_post(client, alice, "alice's")
    await add_post(client, bob, "bob's")

    assert await texts(client, alice) == ["alice's"]
    assert await texts(client, bob) == ["bob's"]


async def test_add_post_ignores_ids_and_owners_sent_along(client: httpx.AsyncClient) -> None:
    victim, attacker = await register(client), await register(client)
    victims_post = await add_post(client, victim, "victim's")

    answer = await client.post(
        ADD_POST,
        json={
            "text": "attacker's",
            "id": victims_post,
            "PostID": victims_post,
            "owner_id": victim.id,
            "user_id": victim.id,
            "created_at": "2000-01-01T00:00:00.000000Z",
        },
        headers=attacker.auth,
    )

    assert answer.status_code == 200
    assert answer.json()["PostID"] != victims_post
    assert await texts(client, victim) == ["victim's"]
    attackers_posts = (await get_posts(client, attacker)).json()
    assert [post["text"] for post in attackers_posts] == ["attacker's"]
    assert not attackers_posts[0]["created_at"].startswith("2000")


async def test_delete_of_your_own_post_is_204_with_an_empty_body(client: httpx.AsyncClient) -> None:
    account = await register(client)
    keep = await add_post(client, account, "keep")
    drop = await add_post(client, account, "drop")

    answer = await client.delete(delete_url(drop), headers=account.auth)

    assert answer.status_code == 204
    assert answer.content == b""
    assert [post["id"] for post in (await get_posts(client, account)).json()] == [keep]


async def test_delete_of_someone_elses_post_is_404_and_post_survives(client: httpx.AsyncClient) -> None:
    owner, other = await register(client), await register(client)
    post_id = await add_post(client, owner, "not yours")
    await get_posts(client, owner)

    answer = await client.delete(delete_url(post_id), headers=other.auth)

    assert_detail(answer, 404, "Post not found")
    assert await texts(client, owner) == ["not yours"]


async def test_delete_of_someone_elses_post_looks_like_a_missing_one(client: httpx.AsyncClient) -> None:
    owner, other = await register(client), await register(client)
    theirs = await add_post(client, owner, "theirs")
    gone = await add_post(client, other, "gone")
    await client.delete(delete_url(gone), headers=other.auth)

    someone_elses = await client.delete(delete_url(theirs), headers=other.auth)
    missing = await client.delete(delete_url(gone), headers=other.auth)

    assert (someone_elses.status_code, someone_elses.content) == (missing.status_code, missing.content)


async def test_deleting_a_post_twice_is_404_the_second_time(client: httpx.AsyncClient) -> None:
    account = await register(client)
    post_id = await add_post(client, account, "once")

    first = await client.delete(delete_url(post_id), headers=account.auth)
    second = await client.delete(delete_url(post_id), headers=account.auth)

    assert first.status_code == 204
    assert_detail(second, 404, "Post not found")


async def test_the_bearer_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    account = await register(client)

    for scheme in ("bearer", "BEARER", "BeArEr"):
        answer = await client.get(GET_POSTS, headers={"Authorization": f"{scheme} {account.token}"})
        assert answer.status_code == 200, scheme


# --- the 1 MB rule ------------------------------------------------------------------------------


async def test_a_text_of_exactly_1_mib_is_accepted(client: httpx.AsyncClient) -> None:
    account = await register(client)

    await add_post(client, account, "a" * MAX_POST_BYTES)

    assert [len(text) for text in await texts(client, account)] == [MAX_POST_BYTES]


async def test_a_text_at_the_limit_full_of_emoji_round_trips_byte_identical(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    # 4-byte emoji, a ZWJ family, a flag, combining marks and 2- and 3-byte characters.
    pattern = "😀👨‍👩‍👧🇫🇷é̃€"
    text = pattern * (MAX_POST_BYTES // len(pattern.encode()))
    text += "a" * (MAX_POST_BYTES - len(text.encode()))
    assert len(text.encode()) == MAX_POST_BYTES

    await add_post(client, account, text)
    listed = await get_posts(client, account)

    assert listed.json()[0]["text"] == text
    assert text.encode() in listed.content


async def test_a_text_at_the_limit_sent_with_every_character_escaped_fits_the_body_cap(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    text = "\x01" * MAX_POST_BYTES
    body = json.dumps({"text": text}).encode()
    assert len(body) > 6 * MAX_POST_BYTES

    answer = await client.post(
        ADD_POST, content=body, headers={**account.auth, "Content-Type": "application/json"}
    )

    assert answer.status_code == 200
    assert await texts(client, account) == [text]


async def test_emoji_sent_as_escaped_surrogate_pairs_are_stored_as_emoji(client: httpx.AsyncClient) -> None:
    account = await register(client)
    body = json.dumps({"text": "😀 ok"}, ensure_ascii=True)
    assert "\\ud83d\\ude00" in body

    answer = await client.post(ADD_POST, content=body, headers=account.auth)

    assert answer.status_code == 200
    assert await texts(client, account) == ["😀 ok"]


# --- the cache ----------------------------------------------------------------------------------


async def test_get_posts_says_miss_then_hit_with_the_same_body(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await add_post(client, account, "cached")

    first = await get_posts(client, account)
    second = await get_posts(client, account)

    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content
    assert_json(second)


async def test_a_cache_hit_touches_no_repository(make_container: Callable[..., Container]) -> None:
    storage = CountingStorage(SystemClock())
    container = make_container()
    container.uow.override(providers.Object(storage))
    async with in_process_client(container) as http:
        account = await register(http)
        await add_post(http, account, "hello")
        await get_posts(http, account)
        before = storage.calls.total

        hits = [await get_posts(http, account) for _ in range(3)]

        assert [hit.headers["x-cache"] for hit in hits] == ["hit"] * 3
        assert storage.calls.total == before


async def test_the_owners_add_post_invalidates_their_cached_list(client: httpx.AsyncClient) -> None:
    account = await register(client)
    await add_post(client, account, "one")
    await get_posts(client, account)
    await get_posts(client, account)

    await add_post(client, account, "two")
    after = await get_posts(client, account)

    assert after.headers["x-cache"] == "miss"
    assert [post["text"] for post in after.json()] == ["one", "two"]


async def test_the_owners_delete_post_invalidates_their_cached_list(client: httpx.AsyncClient) -> None:
    account = await register(client)
    post_id = await add_post(client, account, "doomed")
    await get_posts(client, account)

    await client.delete(delete_url(post_id), headers=account.auth)
    after = await get_posts(client, account)

    assert (after.headers["x-cache"], after.json()) == ("miss", [])


async def test_another_users_writes_leave_my_cached_list_alone(client: httpx.AsyncClient) -> None:
    mine, theirs = await register(client), await register(client)
    await add_post(client, mine, "mine")
    await get_posts(client, mine)

    await add_post(client, theirs, "theirs")

    assert (await get_posts(client, mine)).headers["x-cache"] == "hit"


async def test_a_failed_delete_of_someone_elses_post_leaves_their_cache_valid(
    client: httpx.AsyncClient,
) -> None:
    owner, other = await register(client), await register(client)
    post_id = await add_post(client, owner, "kept")
    await get_posts(client, owner)

    await client.delete(delete_url(post_id), headers=other.auth)
    after = await get_posts(client, owner)

    assert [post["text"] for post in after.json()] == ["kept"]


# --- dependencies down --------------------------------------------------------------------------


async def test_with_the_database_down_register_and_login_answer_503_with_retry_after(
    client_with: MakeClient,
) -> None:
    async with client_with(uow=DownUnitOfWork) as http:
        answers = [
            await http.post(REGISTER, json={"email": unique_email(), "password": PASSWORD}),
            await http.post(LOGIN, json={"email": unique_email(), "password": PASSWORD}),
            await http.post(LOGIN, data={"username": unique_email(), "password": PASSWORD}),
        ]

    for answer in answers:
        assert_detail(answer, 503)
        assert answer.headers["retry-after"].isdigit()


async def test_with_the_database_down_post_routes_answer_503(
    make_container: Callable[..., Container],
) -> None:
    container = make_container()
    container.uow.override(providers.Object(DownUnitOfWork))
    auth = bearer(container.tokens().issue(1, "no-such-session").value)
    async with in_process_client(container) as http:
        answers = [
            await http.post(ADD_POST, json={"text": "hello"}, headers=auth),
            await http.get(GET_POSTS, headers=auth),
            await http.delete(delete_url(1), headers=auth),
        ]

    for answer in answers:
        assert_detail(answer, 503)
        assert answer.headers["retry-after"].isdigit()


async def test_with_the_cache_down_reads_come_from_storage_and_writes_succeed(
    client_with: MakeClient,
) -> None:
    cache = DownCache()
    async with client_with(cache=cache) as http:
        account = await register(http)
        post_id = await add_post(http, account, "first")
        await add_post(http, account, "second")
        reads = [await get_posts(http, account) for _ in range(2)]
        deleted = await http.delete(delete_url(post_id), headers=account.auth)
        after = await get_posts(http, account)

    assert [read.headers["x-cache"] for read in reads] == ["miss", "miss"]
    assert [post["text"] for post in reads[0].json()] == ["first", "second"]
    assert deleted.status_code == 204
    assert [post["text"] for post in after.json()] == ["second"]
    assert cache.attempts > 0
