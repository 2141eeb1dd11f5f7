"""Users whose rows were changed straight in the database, not through the service: every route of
both APIs answers them the same way."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from entrypoints.container import Container
from tests.conftest import cheapest_argon2, migrate_to
from tests.http_client import in_process_client


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "behind.db"
    migrate_to(f"sqlite+aiosqlite:///{path}")
    return path


def service(make_container: Callable[..., Container], sqlite_file: Path) -> Container:
    """A fresh server process's worth of service on the file: its caches start empty."""
    return make_container(database_url=f"sqlite+aiosqlite:///{sqlite_file}")


async def every_token_route(http: httpx.AsyncClient, token: str, post_id: int) -> dict[str, int]:
    auth = {"Authorization": f"Bearer {token}"}
    query = {"token": token}
    answers = {
        "add-post": await http.post("/api/v1/posts/add-post", json={"text": "t"}, headers=auth),
        "get-posts": await http.get("/api/v1/posts/get-posts", headers=auth),
        "delete-post": await http.delete(f"/api/v1/posts/delete-post/{post_id}", headers=auth),
        "AddPost": await http.post("/posts/AddPost", params=query, json={"Post_Text": "t"}),
        "GetPosts": await http.get("/posts/GetPosts", params=query),
        "DeletePost": await http.post("/posts/DeletePost", params=query, json={"Post_ID": post_id}),
    }
    return {route: answer.status_code for route, answer in answers.items()}


async def test_a_token_of_a_user_deleted_behind_the_services_back_is_401_on_every_route(
    make_container: Callable[..., Container], sqlite_file: Path
) -> None:
    async with in_process_client(service(make_container, sqlite_file)) as http:
        registered = await http.post(
            "/api/v1/users/register", json={"email": "gone@example.com", "password": "correct horse"}
        )
        token = registered.json()["access_token"]
        added = await http.post(
            "/api/v1/posts/add-post", json={"text": "mine"}, headers={"Authorization": f"Bearer {token}"}
        )
        post_id = added.json()["PostID"]
    with sqlite3.connect(sqlite_file) as connection:
        connection.execute("DELETE FROM posts")
        connection.execute("DELETE FROM users WHERE email = 'gone@example.com'")

    async with in_process_client(service(make_container, sqlite_file)) as http:
        statuses = await every_token_route(http, token, post_id)

    assert statuses == dict.fromkeys(statuses, 401)
    assert len(statuses) == 6


async def test_a_user_stored_under_an_address_todays_rules_refuse_is_served_on_every_route(
    make_container: Callable[..., Container], sqlite_file: Path
) -> None:
    # Two dots in a row: email-validator refuses it today; older rules let such addresses in.
    email = "legacy..dots@example.com"
    password_hash = cheapest_argon2().hash("correct horse")
    with sqlite3.connect(sqlite_file) as connection:
        connection.execute(
            "INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, '2020-01-01 00:00:00')",
            (email, password_hash),
        )

    async with in_process_client(service(make_container, sqlite_file)) as http:
        credentials = {"email": email, "password": "correct horse"}
        form = {"username": email, "password": "correct horse"}
        logins = [
            await http.post("/api/v1/users/login", json=credentials),
            await http.post("/api/v1/users/login", data=form),
            await http.post("/auth/login", data=form),
        ]
        token = logins[0].json()["access_token"]
        added = await http.post(
            "/api/v1/posts/add-post",
            json={"text": "still here"},
            headers={"Authorization": f"Bearer {token}"},
        )
        listed = await http.get("/posts/GetPosts", params={"token": token})
        statuses = await every_token_route(http, token, added.json()["PostID"])

    assert [answer.status_code for answer in logins] == [200, 200, 200]
    assert [post["User_Email"] for post in listed.json()] == [email]
    assert statuses == {
        "add-post": 200,
        "get-posts": 200,
        "delete-post": 204,
        "AddPost": 200,
        "GetPosts": 200,
        "DeletePost": 200,
    }
