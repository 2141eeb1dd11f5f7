from __future__ import annotations

import httpx


async def test_register_login_add_list_twice_and_delete(client: httpx.AsyncClient) -> None:
    credentials = {"email": "Alice@Example.com", "password": "correct horse"}
    registered = await client.post("/api/v1/users/register", json=credentials)
    assert registered.status_code == 201
    assert registered.json()["email"] == "alice@example.com"

    login = await client.post(
        "/api/v1/users/login", data={"username": "alice@example.com", "password": "correct horse"}
    )
    assert login.status_code == 200
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

    added = await client.post("/api/v1/posts/add-post", json={"text": "hello"}, headers=auth)
    assert added.status_code == 200
    post_id = added.json()["PostID"]

    first = await client.get("/api/v1/posts/get-posts", headers=auth)
    second = await client.get("/api/v1/posts/get-posts", headers=auth)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content
    assert [post["text"] for post in first.json()] == ["hello"]

    deleted = await client.delete(f"/api/v1/posts/delete-post/{post_id}", headers=auth)
    assert deleted.status_code == 204
    assert deleted.content == b""
    after = await client.get("/api/v1/posts/get-posts", headers=auth)
    assert (after.headers["x-cache"], after.json()) == ("miss", [])
