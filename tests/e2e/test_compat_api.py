"""The compatibility API (contract section 3): README-A's routes and wire format over the same store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from dependency_injector import providers

from application.posts import RenderedPosts
from entrypoints.container import Container
from tests.http_client import in_process_client

PASSWORD = "correct horse"
MISSING_TOKEN = {"detail": [{"type": "missing", "loc": ["query", "token"], "msg": "Field required"}]}


async def register(client: httpx.AsyncClient, email: str = "alice@example.com") -> httpx.Response:
    return await client.post("/auth/register", json={"email": email, "password": PASSWORD})


async def login(client: httpx.AsyncClient, email: str = "alice@example.com") -> str:
    answer = await client.post("/auth/login", data={"username": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert isinstance(token, str)
    return token


async def user(client: httpx.AsyncClient, email: str = "alice@example.com") -> str:
    assert (await register(client, email)).status_code == 201
    return await login(client, email)


async def add(client: httpx.AsyncClient, token: str, text: str) -> int:
    answer = await client.post("/posts/AddPost", params={"token": token}, json={"Post_Text": text})
    assert answer.status_code == 200, answer.text
    post_id = answer.json()["Post_ID"]
    assert isinstance(post_id, int)
    return post_id


async def listing(client: httpx.AsyncClient, token: str) -> httpx.Response:
    answer = await client.get("/posts/GetPosts", params={"token": token})
    assert answer.status_code == 200, answer.text
    return answer


async def delete(client: httpx.AsyncClient, token: str, post_id: Any) -> httpx.Response:
    return await client.post("/posts/DeletePost", params={"token": token}, json={"Post_ID": post_id})


def canonical_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Registration and login


async def test_register_answers_201_with_the_fastapi_users_fields(client: httpx.AsyncClient) -> None:
    answer = await register(client, "Alice@Example.com")
    assert answer.status_code == 201
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body == {
        "id": body["id"],
        "email": "alice@example.com",
        "is_active": True,
        "is_superuser": False,
        "is_verified": False,
    }
    assert isinstance(body["id"], int)


async def test_register_ignores_privilege_and_id_fields(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/auth/register",
        json={
            "email": "alice@example.com",
            "password": PASSWORD,
            "id": 999,
            "is_superuser": True,
            "is_verified": True,
            "is_active": False,
        },
    )
    assert answer.status_code == 201
    assert answer.json()["id"] != 999
    assert (answer.json()["is_superuser"], answer.json()["is_verified"], answer.json()["is_active"]) == (
        False,
        False,
        True,
    )


async def test_register_of_an_existing_email_in_any_case_is_400_register_user_already_exists(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "alice@example.com")
    again = await register(client, "ALICE@example.com")
    assert (again.status_code, again.json()) == (400, {"detail": "REGISTER_USER_ALREADY_EXISTS"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "alice@example.com", "password": "short"}, "password"),
        ({"email": "alice@example.com"}, "password"),
        ({"email": 5, "password": PASSWORD}, "email"),
    ],
)
async def test_register_with_invalid_fields_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    answer = await client.post("/auth/register", json=body)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["body", field]]


async def test_register_with_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/auth/register", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][0] == "body"


async def test_register_with_a_non_json_body_is_415(client: httpx.AsyncClient) -> None:
    answer = await client.post("/auth/register", data={"email": "alice@example.com", "password": PASSWORD})
    assert answer.status_code == 415
    assert isinstance(answer.json()["detail"], str)


async def test_login_with_the_password_form_answers_a_bearer_token(client: httpx.AsyncClient) -> None:
    await register(client)
    answer = await client.post("/auth/login", data={"username": "Alice@Example.com", "password": PASSWORD})
    assert answer.status_code == 200
    assert answer.json() == {"access_token": answer.json()["access_token"], "token_type": "bearer"}


async def test_login_with_a_multipart_form_works_too(client: httpx.AsyncClient) -> None:
    await register(client)
    answer = await client.post(
        "/auth/login", files={"username": (None, "alice@example.com"), "password": (None, PASSWORD)}
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
        ("@", "x"),
    ],
)
async def test_failed_login_is_400_login_bad_credentials_also_for_a_malformed_username(
    client: httpx.AsyncClient, username: str, password: str
) -> None:
    await register(client)
    answer = await client.post("/auth/login", data={"username": username, "password": password})
    assert (answer.status_code, answer.json()) == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})


@pytest.mark.parametrize(
    ("form", "missing"),
    [
        ({}, ["username", "password"]),
        ({"username": "alice@example.com"}, ["password"]),
        ({"username": "", "password": PASSWORD}, ["username"]),
    ],
)
async def test_login_without_a_field_is_422_naming_it(
    client: httpx.AsyncClient, form: dict[str, str], missing: list[str]
) -> None:
    answer = await client.post("/auth/login", data=form)
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {"type": "missing", "loc": ["body", name], "msg": "Field required"} for name in missing
    ]


async def test_login_with_a_json_body_is_415(client: httpx.AsyncClient) -> None:
    await register(client)
    answer = await client.post("/auth/login", json={"username": "alice@example.com", "password": PASSWORD})
    assert answer.status_code == 415


# AddPost


async def test_add_post_answers_the_new_post_id(client: httpx.AsyncClient) -> None:
    token = await user(client)
    answer = await client.post("/posts/AddPost", params={"token": token}, json={"Post_Text": "hello"})
    assert answer.status_code == 200
    assert answer.json() == {"Post_ID": answer.json()["Post_ID"]}
    assert isinstance(answer.json()["Post_ID"], int)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/posts/AddPost", {"Post_Text": "hello"}),
        ("GET", "/posts/GetPosts", None),
        ("POST", "/posts/DeletePost", {"Post_ID": 1}),
    ],
)
async def test_post_route_without_token_is_422_in_fastapi_shape_even_with_a_bearer_header(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    token = await user(client)
    answer = await client.request(method, path, json=body, headers=canonical_auth(token))
    assert (answer.status_code, answer.json()) == (422, MISSING_TOKEN)


@pytest.mark.parametrize("bad_token", ["", "garbage", "a.b.c"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/posts/AddPost", {"Post_Text": "hello"}),
        ("GET", "/posts/GetPosts", None),
        ("POST", "/posts/DeletePost", {"Post_ID": 1}),
    ],
)
async def test_post_route_with_a_bad_token_is_401_with_a_bearer_challenge(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, bad_token: str
) -> None:
    answer = await client.request(method, path, params={"token": bad_token}, json=body)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert isinstance(answer.json()["detail"], str)


async def test_a_tampered_token_is_401(client: httpx.AsyncClient) -> None:
    token = await user(client)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"
    answer = await client.get("/posts/GetPosts", params={"token": tampered})
    assert answer.status_code == 401


@pytest.mark.parametrize(
    "body", [{"Post_Text": ""}, {}, {"Post_Text": 5}, {"Post_Text": None}, {"text": "x"}]
)
async def test_add_post_with_an_empty_missing_or_non_string_text_is_422(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    token = await user(client)
    answer = await client.post("/posts/AddPost", params={"token": token}, json=body)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["body", "Post_Text"]]


async def test_add_post_with_a_non_json_body_is_415(client: httpx.AsyncClient) -> None:
    token = await user(client)
    answer = await client.post("/posts/AddPost", params={"token": token}, data={"Post_Text": "hello"})
    assert answer.status_code == 415


async def test_add_post_ignores_id_and_owner_fields(client: httpx.AsyncClient) -> None:
    alice = await user(client)
    bob = await user(client, "bob@example.com")
    answer = await client.post(
        "/posts/AddPost",
        params={"token": alice},
        json={"Post_Text": "mine", "Post_ID": 4242, "User_Email": "bob@example.com", "owner_id": 2},
    )
    assert answer.status_code == 200
    assert answer.json()["Post_ID"] != 4242
    assert (await listing(client, bob)).json() == []
    assert [post["Post_Text"] for post in (await listing(client, alice)).json()] == ["mine"]


# GetPosts


async def test_get_posts_lists_own_posts_oldest_first_with_email_and_utc_timestamp(
    client: httpx.AsyncClient,
) -> None:
    token = await user(client, "Alice@Example.com")
    first = await add(client, token, "first")
    second = await add(client, token, "second 🎉")
    answer = await listing(client, token)
    assert answer.headers["content-type"].startswith("application/json")
    posts = answer.json()
    assert [{key: post[key] for key in ("Post_ID", "Post_Text", "User_Email")} for post in posts] == [
        {"Post_ID": first, "Post_Text": "first", "User_Email": "alice@example.com"},
        {"Post_ID": second, "Post_Text": "second 🎉", "User_Email": "alice@example.com"},
    ]
    assert all(set(post) == {"Post_ID", "Post_Text", "User_Email", "Creation_DateTime"} for post in posts)
    for post in posts:
        stamp = post["Creation_DateTime"]
        assert stamp.endswith("Z")
        assert len(stamp) == len("2026-11-20T22:21:00.123456Z")


async def test_get_posts_shows_only_the_callers_posts(client: httpx.AsyncClient) -> None:
    alice = await user(client)
    bob = await user(client, "bob@example.com")
    await add(client, alice, "alice's")
    await add(client, bob, "bob's")
    assert [post["Post_Text"] for post in (await listing(client, alice)).json()] == ["alice's"]
    assert [post["User_Email"] for post in (await listing(client, bob)).json()] == ["bob@example.com"]


async def test_get_posts_is_served_from_the_cache_until_the_users_own_write(
    client: httpx.AsyncClient,
) -> None:
    token = await user(client)
    await add(client, token, "one")
    first = await listing(client, token)
    second = await listing(client, token)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content
    await add(client, token, "two")
    after = await listing(client, token)
    assert after.headers["x-cache"] == "miss"
    assert [post["Post_Text"] for post in after.json()] == ["one", "two"]


# DeletePost


async def test_delete_post_deletes_the_callers_post_and_answers_success(client: httpx.AsyncClient) -> None:
    token = await user(client)
    post_id = await add(client, token, "bye")
    await listing(client, token)
    answer = await delete(client, token, post_id)
    assert (answer.status_code, answer.json()) == (200, {"detail": "Success"})
    after = await listing(client, token)
    assert (after.headers["x-cache"], after.json()) == ("miss", [])


async def test_delete_post_of_a_missing_post_answers_success(client: httpx.AsyncClient) -> None:
    token = await user(client)
    post_id = await add(client, token, "bye")
    assert (await delete(client, token, post_id)).status_code == 200
    again = await delete(client, token, post_id)
    assert (again.status_code, again.json()) == (200, {"detail": "Success"})


async def test_delete_post_of_someone_elses_post_answers_success_and_the_post_survives(
    client: httpx.AsyncClient,
) -> None:
    alice = await user(client)
    bob = await user(client, "bob@example.com")
    post_id = await add(client, alice, "alice's")
    answer = await delete(client, bob, post_id)
    assert (answer.status_code, answer.json()) == (200, {"detail": "Success"})
    assert [post["Post_ID"] for post in (await listing(client, alice)).json()] == [post_id]


@pytest.mark.parametrize("post_id", [0, -1, 2**63, 2**63 - 1, 10**40])
async def test_delete_post_with_an_id_no_post_can_have_answers_success(
    client: httpx.AsyncClient, post_id: Any
) -> None:
    token = await user(client)
    answer = await delete(client, token, post_id)
    assert (answer.status_code, answer.json()) == (200, {"detail": "Success"})


@pytest.mark.parametrize("post_id", ["abc", 1.5, None, [], {}, "1e999", True])
async def test_delete_post_with_a_non_integer_id_is_422(client: httpx.AsyncClient, post_id: Any) -> None:
    token = await user(client)
    answer = await delete(client, token, post_id)
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["body", "Post_ID"]]


@pytest.mark.parametrize("raw", [b'{"Post_ID": 1e999}', b'{"Post_ID": ' + b"9" * 5000 + b"}", b"[]", b"{"])
async def test_delete_post_with_a_malformed_body_is_422_never_5xx(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    token = await user(client)
    answer = await client.post(
        "/posts/DeletePost",
        params={"token": token},
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][0] == "body"


async def test_delete_post_without_a_body_is_422(client: httpx.AsyncClient) -> None:
    token = await user(client)
    answer = await client.post("/posts/DeletePost", params={"token": token})
    assert answer.status_code == 422


# One store behind both APIs


async def test_tokens_from_either_login_work_on_both_apis(client: httpx.AsyncClient) -> None:
    await register(client)
    compat_token = await login(client)
    canonical_login = await client.post(
        "/api/v1/users/login", json={"email": "alice@example.com", "password": PASSWORD}
    )
    canonical_token = canonical_login.json()["access_token"]
    for token in (compat_token, canonical_token):
        assert (await client.get("/posts/GetPosts", params={"token": token})).status_code == 200
        assert (await client.get("/api/v1/posts/get-posts", headers=canonical_auth(token))).status_code == 200


async def test_an_account_registered_through_one_api_exists_in_the_other(client: httpx.AsyncClient) -> None:
    canonical = await client.post(
        "/api/v1/users/register", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert canonical.status_code == 201
    again = await register(client, "bob@example.com")
    assert (again.status_code, again.json()) == (400, {"detail": "REGISTER_USER_ALREADY_EXISTS"})
    compat_user = (await register(client, "carol@example.com")).json()
    via_canonical = await client.post(
        "/api/v1/users/register", json={"email": "carol@example.com", "password": PASSWORD}
    )
    assert via_canonical.status_code == 400
    canonical_login = await client.post(
        "/api/v1/users/login", json={"email": "carol@example.com", "password": PASSWORD}
    )
    assert canonical_login.status_code == 200
    assert compat_user["id"] != canonical.json()["id"]


async def test_the_same_scenario_through_both_apis_stores_the_same_posts(client: httpx.AsyncClient) -> None:
    token = await user(client)
    via_compat = await add(client, token, "added through the compatibility API")
    added = await client.post(
        "/api/v1/posts/add-post",
        json={"text": "added through the canonical API"},
        headers=canonical_auth(token),
    )
    via_canonical = added.json()["PostID"]

    compat_list = (await listing(client, token)).json()
    canonical_list = (await client.get("/api/v1/posts/get-posts", headers=canonical_auth(token))).json()
    assert [(post["Post_ID"], post["Post_Text"], post["Creation_DateTime"]) for post in compat_list] == [
        (post["id"], post["text"], post["created_at"]) for post in canonical_list
    ]
    assert [post["Post_ID"] for post in compat_list] == [via_compat, via_canonical]


async def test_a_post_added_through_one_api_is_deletable_through_the_other(client: httpx.AsyncClient) -> None:
    token = await user(client)
    via_compat = await add(client, token, "compat")
    added = await client.post(
        "/api/v1/posts/add-post", json={"text": "canonical"}, headers=canonical_auth(token)
    )
    via_canonical = added.json()["PostID"]

    removed = await client.delete(f"/api/v1/posts/delete-post/{via_compat}", headers=canonical_auth(token))
    assert removed.status_code == 204
    assert (await delete(client, token, via_canonical)).json() == {"detail": "Success"}
    assert (await listing(client, token)).json() == []
    canonical_list = await client.get("/api/v1/posts/get-posts", headers=canonical_auth(token))
    assert canonical_list.json() == []


async def test_another_users_post_cannot_be_deleted_through_either_api(client: httpx.AsyncClient) -> None:
    alice = await user(client)
    bob = await user(client, "bob@example.com")
    post_id = await add(client, alice, "alice's")
    assert (await delete(client, bob, post_id)).status_code == 200
    canonical = await client.delete(f"/api/v1/posts/delete-post/{post_id}", headers=canonical_auth(bob))
    assert canonical.status_code == 404
    assert [post["Post_ID"] for post in (await listing(client, alice)).json()] == [post_id]


async def test_a_write_through_one_api_makes_the_other_apis_next_read_fresh(
    client: httpx.AsyncClient,
) -> None:
    token = await user(client)
    auth = canonical_auth(token)

    async def canonical_read() -> httpx.Response:
        answer = await client.get("/api/v1/posts/get-posts", headers=auth)
        assert answer.status_code == 200
        return answer

    # Both views cached.
    await listing(client, token)
    await canonical_read()
    assert (await listing(client, token)).headers["x-cache"] == "hit"
    assert (await canonical_read()).headers["x-cache"] == "hit"

    # A compat write refreshes the canonical view.
    compat_post = await add(client, token, "via compat")
    fresh = await canonical_read()
    assert (fresh.headers["x-cache"], [post["id"] for post in fresh.json()]) == ("miss", [compat_post])

    # A canonical write refreshes the compat view.
    await listing(client, token)
    assert (await listing(client, token)).headers["x-cache"] == "hit"
    added = await client.post("/api/v1/posts/add-post", json={"text": "via canonical"}, headers=auth)
    canonical_post = added.json()["PostID"]
    fresh_compat = await listing(client, token)
    assert fresh_compat.headers["x-cache"] == "miss"
    assert [post["Post_ID"] for post in fresh_compat.json()] == [compat_post, canonical_post]

    # Deletes too, in both directions.
    await canonical_read()
    assert (await delete(client, token, compat_post)).status_code == 200
    assert [post["id"] for post in (await canonical_read()).json()] == [canonical_post]
    await listing(client, token)
    assert (
        await client.delete(f"/api/v1/posts/delete-post/{canonical_post}", headers=auth)
    ).status_code == 204
    assert (await listing(client, token)).json() == []


async def test_other_users_writes_leave_a_users_cached_list_alone(client: httpx.AsyncClient) -> None:
    alice = await user(client)
    bob = await user(client, "bob@example.com")
    await listing(client, alice)
    await add(client, bob, "bob's")
    assert (await listing(client, alice)).headers["x-cache"] == "hit"


# The token never reaches a log


class _BrokenGetPosts:
    async def execute(self, user_id: int, renderer: object) -> RenderedPosts:
        raise RuntimeError(f"storage exploded for user {user_id}")


@pytest.fixture
async def broken_client(make_container: Callable[..., Container]) -> AsyncIterator[httpx.AsyncClient]:
    container = make_container()
    container.get_posts.override(providers.Object(_BrokenGetPosts()))
    async with in_process_client(container, raise_app_exceptions=False) as http:
        yield http


def _logged_text(record: logging.LogRecord) -> str:
    return (
        logging.Formatter("%(name)s %(message)s").format(record) + repr(record.args) + repr(record.__dict__)
    )


async def test_the_token_never_appears_in_a_log_record_or_an_answer(
    client: httpx.AsyncClient, broken_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = await user(client)
    broken_token = await user(broken_client)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[::-1]}"
    caplog.set_level(logging.DEBUG)

    post_id = await add(client, token, "hello")
    answers = [
        # Succeeding.
        await listing(client, token),
        await listing(client, token),
        await delete(client, token, post_id),
        # Failing validation.
        await client.post("/posts/AddPost", params={"token": token}, json={"Post_Text": ""}),
        await delete(client, token, "abc"),
        await client.post("/posts/AddPost", params={"token": token}, data={"Post_Text": "x"}),
        # Failing authentication.
        await client.get("/posts/GetPosts", params={"token": tampered}),
        await client.post("/posts/AddPost", params={"token": tampered}, json={"Post_Text": "x"}),
        # Failing inside: the exception report.
        await broken_client.get("/posts/GetPosts", params={"token": broken_token}),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 422, 422, 415, 401, 401, 500]

    secrets = (token, tampered, broken_token, signature)
    for answer in answers:
        echoed = answer.text + repr(answer.headers.raw)
        assert not any(secret in echoed for secret in secrets), answer.text[:200]
    # httpx's own "HTTP Request: ..." lines are the client's log, which shows the URL it requested.
    server_records = [
        record for record in caplog.records if not record.name.startswith(("httpx", "httpcore"))
    ]
    assert any(record.levelno >= logging.ERROR for record in server_records), "the crash was reported"
    assert any("/posts/AddPost" in record.getMessage() for record in server_records), "requests were logged"
    for record in server_records:
        text = _logged_text(record)
        for secret in secrets:
            assert secret not in text, f"token leaked by {record.name}: {record.getMessage()[:200]}"
