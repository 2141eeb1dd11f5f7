"""Contract section 5, every row, against every backend configuration: memory://, SQLite with the
in-process cache, and MySQL with Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import attrs
import httpx
import jwt
import pytest

from entrypoints.container import Container
from tests.http_client import in_process_client

API = "/api/v1"
PASSWORD = "correct horse"


@pytest.fixture
async def client(
    backend_settings: dict[str, str], make_container: Callable[..., Container]
) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(make_container(**backend_settings)) as http:
        yield http


@attrs.frozen
class Signed:
    """One session's tokens, as a client keeps them."""

    access: str = attrs.field(repr=False)
    refresh: str = attrs.field(repr=False)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    @property
    def session_id(self) -> str:
        sid: str = jwt.decode(self.access, options={"verify_signature": False})["sid"]
        return sid


def signed(body: dict[str, object]) -> Signed:
    access, refresh = body["access_token"], body["refresh_token"]
    assert isinstance(access, str)
    assert isinstance(refresh, str)
    return Signed(access, refresh)


async def register(client: httpx.AsyncClient, email: str) -> Signed:
    answer = await client.post(f"{API}/users/register", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return signed(answer.json())


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Signed:
    answer = await client.post(f"{API}/users/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return signed(answer.json())


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{API}/users/refresh", json={"refresh_token": token})


async def posts_status(client: httpx.AsyncClient, session: Signed) -> int:
    return (await client.get(f"{API}/posts/get-posts", headers=session.auth)).status_code


async def sessions(client: httpx.AsyncClient, session: Signed) -> list[dict[str, object]]:
    answer = await client.get(f"{API}/users/me/sessions", headers=session.auth)
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, object]] = answer.json()
    return listed


def assert_invalid_refresh(answer: httpx.Response) -> None:
    assert (answer.status_code, answer.json()) == (401, {"detail": "Invalid refresh token"})


async def test_register_and_login_return_a_refresh_token_that_rotates(client: httpx.AsyncClient) -> None:
    first = await register(client, "rot@example.com")
    assert len(first.refresh) >= 43

    answer = await refresh(client, first.refresh)

    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"}
    assert (body["token_type"], body["expires_in"], body["refresh_expires_in"]) == ("bearer", 1800, 1_209_600)
    second = signed(body)
    assert second.refresh != first.refresh
    assert second.session_id == first.session_id
    assert await posts_status(client, second) == 200
    # The successor works once too.
    assert (await refresh(client, second.refresh)).status_code == 200


async def test_a_refresh_token_used_twice_ends_its_session_and_its_successor(
    client: httpx.AsyncClient,
) -> None:
    stolen = await register(client, "reuse@example.com")
    successor = signed((await refresh(client, stolen.refresh)).json())
    other = await log_in(client, "reuse@example.com")

    assert_invalid_refresh(await refresh(client, stolen.refresh))

    assert await posts_status(client, successor) == 401
    assert_invalid_refresh(await refresh(client, successor.refresh))
    # Another session of the same user is not touched.
    assert await posts_status(client, other) == 200


async def test_of_two_concurrent_refreshes_with_one_token_exactly_one_wins_and_the_other_is_a_reuse(
    client: httpx.AsyncClient,
) -> None:
    for number in range(3):
        session = await register(client, f"race{number}@example.com")

        answers = await asyncio.gather(*(refresh(client, session.refresh) for _ in range(2)))

        assert sorted(answer.status_code for answer in answers) == [200, 401]
        (winner,) = (signed(answer.json()) for answer in answers if answer.status_code == 200)
        # The loser presented a token that had been used: the session, successor included, ends.
        assert await posts_status(client, winner) == 401
        assert_invalid_refresh(await refresh(client, winner.refresh))


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "1.abc.0.secret", "9" * 200, "1.2.3.4.5", "-1.a.0.b", "01.a.0.b", "1.a.00.b", "é.a.0.b"],
)
async def test_unknown_or_malformed_refresh_tokens_are_401(client: httpx.AsyncClient, token: str) -> None:
    await register(client, "unknown@example.com")

    answer = await refresh(client, token)

    if token == "":
        assert answer.status_code == 422
    else:
        assert_invalid_refresh(answer)


async def test_a_refresh_token_with_a_wrong_secret_is_401_and_leaves_the_session_alone(
    client: httpx.AsyncClient,
) -> None:
    session = await register(client, "forged@example.com")
    head, _, secret = session.refresh.rpartition(".")

    assert_invalid_refresh(await refresh(client, f"{head}.{secret[::-1]}"))

    assert (await refresh(client, session.refresh)).status_code == 200


async def test_logout_ends_the_session_at_once_and_only_that_one(client: httpx.AsyncClient) -> None:
    phone = await register(client, "logout@example.com")
    laptop = await log_in(client, "logout@example.com")
    assert await posts_status(client, phone) == 200
    assert await posts_status(client, phone) == 200  # now vouched for by the cache

    answer = await client.post(f"{API}/users/logout", headers=phone.auth)

    assert (answer.status_code, answer.content) == (204, b"")
    assert await posts_status(client, phone) == 401
    assert (await client.post(f"{API}/users/logout", headers=phone.auth)).status_code == 401
    assert_invalid_refresh(await refresh(client, phone.refresh))
    assert await posts_status(client, laptop) == 200


async def test_me_answers_the_account(client: httpx.AsyncClient) -> None:
    session = await register(client, "Me@Example.com")

    answer = await client.get(f"{API}/users/me", headers=session.auth)

    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"id", "email", "created_at"}
    assert body["email"] == "me@example.com"
    assert body["created_at"].endswith("Z")


async def test_sessions_are_listed_newest_first_with_the_current_one_marked(
    client: httpx.AsyncClient,
) -> None:
    first = await register(client, "list@example.com")
    second = await log_in(client, "list@example.com")
    third = await log_in(client, "list@example.com")

    listed = await sessions(client, second)

    assert [item["id"] for item in listed] == [third.session_id, second.session_id, first.session_id]
    assert [item["current"] for item in listed] == [False, True, False]
    assert set(listed[0]) == {"id", "created_at", "last_used_at", "current"}
    # A refresh moves its session to the top.
    signed((await refresh(client, first.refresh)).json())
    assert (await sessions(client, second))[0]["id"] == first.session_id


async def test_ending_one_session_by_id_and_someone_elses_is_404(client: httpx.AsyncClient) -> None:
    mine = await register(client, "end-mine@example.com")
    spare = await log_in(client, "end-mine@example.com")
    theirs = await register(client, "end-theirs@example.com")

    others = await client.delete(f"{API}/users/me/sessions/{theirs.session_id}", headers=mine.auth)
    unknown = await client.delete(f"{API}/users/me/sessions/nothing-like-it", headers=mine.auth)
    ended = await client.delete(f"{API}/users/me/sessions/{spare.session_id}", headers=mine.auth)
    again = await client.delete(f"{API}/users/me/sessions/{spare.session_id}", headers=mine.auth)

    assert (others.status_code, others.json()) == (404, {"detail": "Session not found"})
    assert unknown.status_code == 404
    assert (ended.status_code, ended.content) == (204, b"")
    assert again.status_code == 404
    assert await posts_status(client, theirs) == 200
    assert await posts_status(client, spare) == 401
    assert [item["id"] for item in await sessions(client, mine)] == [mine.session_id]


async def test_log_out_everywhere_ends_every_session_this_one_included(client: httpx.AsyncClient) -> None:
    one = await register(client, "everywhere@example.com")
    two = await log_in(client, "everywhere@example.com")
    bystander = await register(client, "bystander@example.com")
    assert await posts_status(client, two) == 200

    answer = await client.delete(f"{API}/users/me/sessions", headers=one.auth)

    assert answer.status_code == 204
    for session in (one, two):
        assert await posts_status(client, session) == 401
        assert_invalid_refresh(await refresh(client, session.refresh))
    assert await posts_status(client, bystander) == 200
    assert (await log_in(client, "everywhere@example.com")).access


async def test_a_password_change_ends_every_other_session(client: httpx.AsyncClient) -> None:
    current = await register(client, "change@example.com")
    other = await log_in(client, "change@example.com")
    assert await posts_status(client, other) == 200

    answer = await client.put(
        f"{API}/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new one"},
        headers=current.auth,
    )

    assert (answer.status_code, answer.content) == (204, b"")
    assert await posts_status(client, current) == 200
    assert await posts_status(client, other) == 401
    assert_invalid_refresh(await refresh(client, other.refresh))
    old = await client.post(f"{API}/users/login", json={"email": "change@example.com", "password": PASSWORD})
    assert old.status_code == 404
    await log_in(client, "change@example.com", "a brand new one")


async def test_a_password_change_needs_the_current_password_and_a_valid_new_one(
    client: httpx.AsyncClient,
) -> None:
    session = await register(client, "wrong@example.com")
    other = await log_in(client, "wrong@example.com")
    url = f"{API}/users/me/password"

    wrong = await client.put(
        url,
        json={"current_password": "not it at all", "new_password": "a brand new one"},
        headers=session.auth,
    )
    short = await client.put(
        url, json={"current_password": PASSWORD, "new_password": "short"}, headers=session.auth
    )

    assert (wrong.status_code, wrong.json()) == (400, {"detail": "Invalid password"})
    assert short.status_code == 422
    assert short.json()["detail"][0]["loc"] == ["body", "new_password"]
    assert await posts_status(client, other) == 200
    await log_in(client, "wrong@example.com")


async def test_deleting_the_account_removes_posts_and_sessions_and_frees_the_email(
    client: httpx.AsyncClient,
) -> None:
    old = await register(client, "gone@example.com")
    other = await log_in(client, "gone@example.com")
    added = await client.post(f"{API}/posts/add-post", json={"text": "old post"}, headers=old.auth)
    assert added.status_code == 200
    assert (await client.get(f"{API}/posts/get-posts", headers=other.auth)).json()[0]["text"] == "old post"
    old_id = (await client.get(f"{API}/users/me", headers=old.auth)).json()["id"]

    wrong = await client.request(
        "DELETE", f"{API}/users/me", json={"password": "not it at all"}, headers=old.auth
    )
    assert (wrong.status_code, wrong.json()) == (400, {"detail": "Invalid password"})
    answer = await client.request("DELETE", f"{API}/users/me", json={"password": PASSWORD}, headers=old.auth)

    assert (answer.status_code, answer.content) == (204, b"")
    for session in (old, other):
        assert await posts_status(client, session) == 401
        assert (await client.get(f"{API}/users/me", headers=session.auth)).status_code == 401
        assert_invalid_refresh(await refresh(client, session.refresh))
    failed = await client.post(f"{API}/users/login", json={"email": "gone@example.com", "password": PASSWORD})
    assert failed.status_code == 404
    again = await client.post(
        f"{API}/users/register", json={"email": "gone@example.com", "password": PASSWORD}
    )
    assert again.status_code == 201
    assert again.json()["id"] != old_id
    new = signed(again.json())
    assert (await client.get(f"{API}/posts/get-posts", headers=new.auth)).json() == []
    assert await posts_status(client, old) == 401


async def test_the_compatibility_api_starts_sessions_that_end_like_any_other(
    client: httpx.AsyncClient,
) -> None:
    registered = await client.post(
        "/auth/register", json={"email": "compat@example.com", "password": PASSWORD}
    )
    assert registered.status_code == 201
    login = await client.post("/auth/login", data={"username": "compat@example.com", "password": PASSWORD})
    assert login.status_code == 200
    assert set(login.json()) == {"access_token", "token_type"}
    token = login.json()["access_token"]
    assert (await client.get("/posts/GetPosts", params={"token": token})).status_code == 200
    canonical = await log_in(client, "compat@example.com")
    listed = await sessions(client, canonical)
    assert len(listed) == 2

    ended = await client.delete(f"{API}/users/me/sessions", headers=canonical.auth)

    assert ended.status_code == 204
    assert (await client.get("/posts/GetPosts", params={"token": token})).status_code == 401
    assert (
        await client.post("/posts/AddPost", params={"token": token}, json={"Post_Text": "x"})
    ).status_code == 401
