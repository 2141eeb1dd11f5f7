"""Factories for the HTTP tests of the canonical API: accounts, posts, and the error shapes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import attrs
import httpx

API = "/api/v1"
REGISTER = f"{API}/users/register"
LOGIN = f"{API}/users/login"
ADD_POST = f"{API}/posts/add-post"
GET_POSTS = f"{API}/posts/get-posts"
PASSWORD = "correct horse battery"

_emails = itertools.count(1)


def unique_email() -> str:
    return f"user{next(_emails)}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def delete_url(post_id: int | str) -> str:
    return f"{API}/posts/delete-post/{post_id}"


@attrs.frozen
class Account:
    id: int
    email: str
    password: str
    token: str = attrs.field(repr=False)

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


async def register(client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD) -> Account:
    answer = await client.post(REGISTER, json={"email": email or unique_email(), "password": password})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return Account(body["id"], body["email"], password, body["access_token"])


async def add_post(client: httpx.AsyncClient, account: Account, text: str) -> int:
    answer = await client.post(ADD_POST, json={"text": text}, headers=account.auth)
    assert answer.status_code == 200, answer.text[:500]
    post_id = answer.json()["PostID"]
    assert isinstance(post_id, int)
    return post_id


async def get_posts(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    answer = await client.get(GET_POSTS, headers=account.auth)
    assert answer.status_code == 200, answer.text[:500]
    return answer


async def texts(client: httpx.AsyncClient, account: Account) -> list[str]:
    return [post["text"] for post in (await get_posts(client, account)).json()]


def assert_json(answer: httpx.Response) -> Any:
    assert answer.headers["content-type"].split(";")[0].strip() == "application/json"
    return answer.json()


def assert_detail(answer: httpx.Response, status: int, detail: str | None = None) -> None:
    """A simple error: `{"detail": "<message>"}` with the given status."""
    assert answer.status_code == status, answer.text[:500]
    body = assert_json(answer)
    assert set(body) == {"detail"}
    assert isinstance(body["detail"], str)
    if detail is not None:
        assert body["detail"] == detail


def assert_validation_error(answer: httpx.Response, loc: Sequence[str | int] | None = None) -> None:
    """A 422 in FastAPI's shape; with `loc`, one of its items is about that location."""
    assert answer.status_code == 422, answer.text[:500]
    body = assert_json(answer)
    assert set(body) == {"detail"}
    items = body["detail"]
    assert isinstance(items, list)
    assert items
    for item in items:
        assert {"type", "loc", "msg"} <= set(item)
        assert isinstance(item["type"], str)
        assert isinstance(item["msg"], str)
        assert isinstance(item["loc"], list)
    if loc is not None:
        assert list(loc) in [item["loc"] for item in items], items


def assert_unauthenticated(answer: httpx.Response) -> None:
    assert_detail(answer, 401)
    assert answer.headers["www-authenticate"] == "Bearer"
