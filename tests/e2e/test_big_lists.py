"""A big list is served a page at a time: its body goes out in many pieces, a request holds far less
than the list in memory, and a list over HEXPOST_CACHE_MAX_ENTRY_BYTES is served but never cached."""

from __future__ import annotations

import asyncio
import hashlib
import json
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message

from entrypoints.allocator import ALLOCATOR
from entrypoints.container import Container
from entrypoints.http.app import create_app
from tests.conftest import migrate_to
from tests.e2e.helpers import GET_POSTS, Account, add_post, register
from tests.http_client import in_process_client
from tests.unit.fakes import FakeLibc

POSTS = 64
POST_CHARS = 200 * 1024
LIST_BYTES = POSTS * POST_CHARS
MAX_ENTRY_BYTES = 1024 * 1024


@pytest.fixture(params=["memory", "sqlite"])
async def service(
    request: pytest.FixtureRequest, tmp_path: Path, make_container: Callable[..., Container]
) -> AsyncIterator[tuple[Container, httpx.AsyncClient]]:
    settings: dict[str, Any] = {"cache_max_entry_bytes": MAX_ENTRY_BYTES, "post_limits": "off"}
    if request.param == "sqlite":
        settings["database_url"] = f"sqlite+aiosqlite:///{tmp_path / 'big.db'}"
        migrate_to(settings["database_url"])
    container = make_container(**settings)
    async with in_process_client(container) as client:
        yield container, client


async def big_account(client: httpx.AsyncClient) -> Account:
    account = await register(client)
    for number in range(POSTS):
        await add_post(client, account, f"{number:04}" + "x" * (POST_CHARS - 4))
    return account


async def get_posts_streamed(app: ASGIApp, account: Account) -> tuple[dict[str, bytes], list[int], str]:
    """get-posts called on the ASGI app itself: the headers, the size of each piece of the body as
    the app sent it, and a digest of the whole body (the body itself is not kept)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": GET_POSTS,
        "raw_path": GET_POSTS.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"hexpost.test"), (b"authorization", f"Bearer {account.token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("hexpost.test", 80),
    }
    headers: dict[str, bytes] = {}
    sizes: list[int] = []
    digest = hashlib.sha256()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200
            headers.update((name.decode(), value) for name, value in message["headers"])
        elif message.get("body"):
            sizes.append(len(message["body"]))
            digest.update(message["body"])

    await app(scope, receive, send)
    return headers, sizes, digest.hexdigest()


async def test_a_big_list_goes_out_in_pieces_in_bounded_memory_and_uncached(
    service: tuple[Container, httpx.AsyncClient],
) -> None:
    container, client = service
    account = await big_account(client)
    whole = await client.get(GET_POSTS, headers=account.auth)
    assert whole.status_code == 200
    texts = [post["text"] for post in whole.json()]
    assert [text[:4] for text in texts] == [f"{number:04}" for number in range(POSTS)]
    app = create_app(container)

    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        headers, sizes, digest = await get_posts_streamed(app, account)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert digest == hashlib.sha256(whole.content).hexdigest()
    assert len(sizes) > POSTS // 2
    assert max(sizes) < LIST_BYTES // 8
    # Everything the request allocated at its busiest: a few pages, not the list.
    assert peak - before < LIST_BYTES // 2, f"peak {peak - before:,} bytes for a {LIST_BYTES:,}-byte list"
    # Over the cache's entry limit: served from the database every time.
    assert headers["x-cache"] == whole.headers["x-cache"].encode() == b"miss"


async def test_a_small_list_is_answered_whole_and_cached(
    service: tuple[Container, httpx.AsyncClient],
) -> None:
    _, client = service
    account = await register(client)
    await add_post(client, account, "small")

    first = await client.get(GET_POSTS, headers=account.auth)
    second = await client.get(GET_POSTS, headers=account.auth)

    assert first.headers["content-length"] == str(len(first.content))
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert json.loads(second.content) == json.loads(first.content)


async def test_the_heap_is_given_back_when_the_last_big_answer_is_sent(
    service: tuple[Container, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    container, client = service
    big, small = await big_account(client), await register(client)
    await add_post(client, small, "small")
    app = create_app(container)
    libc = FakeLibc()
    monkeypatch.setattr(ALLOCATOR, "_libc", libc)

    answers = await asyncio.gather(get_posts_streamed(app, big), get_posts_streamed(app, big))
    assert [len(sizes) > 1 for _, sizes, _ in answers] == [True, True]
    assert libc.trims == [0]

    assert (await client.get(GET_POSTS, headers=small.auth)).status_code == 200
    assert libc.trims == [0]
