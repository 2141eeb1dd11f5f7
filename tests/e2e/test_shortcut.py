"""The whole list (GET /api/v1/posts/get-posts without a query string) and add-post (POST
/api/v1/posts/add-post, the same) are answered by `Shortcut`, past Starlette's routing. Each must
answer exactly what the routed way answers (the same route with any other query string), be counted
and logged as that route, and stay inside the body cap and admission.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from dependency_injector import providers

from entrypoints.container import Container
from tests.e2e.helpers import ADD_POST, GET_POSTS, Account, add_post, bearer, register
from tests.e2e.test_request_log import access_records
from tests.http_client import in_process_client
from tests.metrics_text import value
from tests.unit.fakes import DownCache, DownUnitOfWork, GatedFillCache

ROUTED = f"{GET_POSTS}?via=router"
ROUTED_ADD = f"{ADD_POST}?via=router"
# Headers that differ between any two answers.
PER_ANSWER = {"x-request-id"}


def same_answer(shortcut: httpx.Response, routed: httpx.Response) -> None:
    assert shortcut.status_code == routed.status_code
    assert shortcut.content == routed.content
    headers = {name: value for name, value in shortcut.headers.items() if name not in PER_ANSWER}
    assert headers == {name: value for name, value in routed.headers.items() if name not in PER_ANSWER}


@pytest.fixture
async def http(make_container: Callable[..., Container]) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(make_container(post_limits="off")) as client:
        yield client


async def with_posts(http: httpx.AsyncClient) -> Account:
    account = await register(http)
    for text in ("first", "second"):
        await add_post(http, account, text)
    return account


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "bearer a.b.c", "Token x"],
)
async def test_an_unauthenticated_request_gets_the_same_401(
    http: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    shortcut, routed = await http.get(GET_POSTS, headers=headers), await http.get(ROUTED, headers=headers)

    assert shortcut.status_code == 401
    assert shortcut.headers["www-authenticate"] == "Bearer"
    same_answer(shortcut, routed)


async def test_a_list_from_the_cache_is_the_same_answer(http: httpx.AsyncClient) -> None:
    account = await with_posts(http)
    assert (await http.get(GET_POSTS, headers=account.auth)).headers["x-cache"] == "miss"

    shortcut, routed = (
        await http.get(GET_POSTS, headers=account.auth),
        await http.get(ROUTED, headers=account.auth),
    )

    assert shortcut.status_code == 200
    assert [post["text"] for post in shortcut.json()] == ["first", "second"]
    assert shortcut.headers["x-cache"] == "hit"
    assert shortcut.headers["content-type"] == "application/json"
    same_answer(shortcut, routed)


async def test_a_list_read_from_the_store_is_the_same_answer(
    make_container: Callable[..., Container],
) -> None:
    container = make_container()
    cache = DownCache()
    container.posts_cache.override(providers.Object(cache))
    async with in_process_client(container) as http:
        account = await with_posts(http)

        shortcut = await http.get(GET_POSTS, headers=account.auth)
        routed = await http.get(ROUTED, headers=account.auth)

    assert shortcut.status_code == 200
    assert shortcut.headers["x-cache"] == "miss"
    same_answer(shortcut, routed)


async def test_the_current_tag_gets_the_same_304(http: httpx.AsyncClient) -> None:
    account = await with_posts(http)
    etag = (await http.get(GET_POSTS, headers=account.auth)).headers["etag"]
    headers = {**account.auth, "If-None-Match": f'W/"other", {etag}'}

    shortcut, routed = await http.get(GET_POSTS, headers=headers), await http.get(ROUTED, headers=headers)

    assert shortcut.status_code == 304
    assert shortcut.content == b""
    same_answer(shortcut, routed)


async def test_a_store_that_is_down_gets_the_same_503(make_container: Callable[..., Container]) -> None:
    container = make_container()
    container.uow.override(providers.Object(DownUnitOfWork))
    container.posts_cache.override(providers.Object(DownCache()))
    token = container.tokens().issue(1, "a-session").value
    async with in_process_client(container) as http:
        shortcut = await http.get(GET_POSTS, headers=bearer(token))
        routed = await http.get(ROUTED, headers=bearer(token))

    assert shortcut.status_code == 503
    assert shortcut.headers["retry-after"] == "5"
    same_answer(shortcut, routed)


async def test_a_list_too_long_to_hold_whole_streams_the_same_bytes(
    make_container: Callable[..., Container],
) -> None:
    container = make_container(post_limits="off", cache_max_entry_bytes=64 * 1024)
    async with in_process_client(container) as http:
        account = await register(http)
        for number in range(8):
            await add_post(http, account, f"{number}" + "x" * 20_000)

        shortcut = await http.get(GET_POSTS, headers=account.auth)
        routed = await http.get(ROUTED, headers=account.auth)

    assert shortcut.status_code == 200
    assert "etag" not in shortcut.headers
    assert "content-length" not in shortcut.headers
    assert len(shortcut.json()) == 8
    same_answer(shortcut, routed)


async def test_other_methods_and_paths_are_routed(http: httpx.AsyncClient) -> None:
    account = await with_posts(http)

    head = await http.head(GET_POSTS, headers=account.auth)
    post = await http.post(GET_POSTS, headers=account.auth)
    slash = await http.get(GET_POSTS + "/", headers=account.auth, follow_redirects=True)

    assert head.status_code == 200
    assert head.content == b""
    assert post.status_code == 405
    assert slash.status_code == 200
    assert [item["text"] for item in slash.json()] == ["first", "second"]


async def test_it_is_counted_and_logged_as_its_route(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    account = await with_posts(http)
    caplog.set_level(logging.INFO)

    assert (await http.get(GET_POSTS, headers=account.auth)).status_code == 200
    assert (await http.get(GET_POSTS)).status_code == 401

    text = (await http.get("/metrics")).text
    for status in ("200", "401"):
        assert value(text, "http_requests_total", route=GET_POSTS, method="GET", status=status) == 1
    logged = [(r.path, r.status, r.user_id) for r in access_records(caplog) if r.path == GET_POSTS]  # type: ignore[attr-defined]
    assert logged == [(GET_POSTS, 200, account.id), (GET_POSTS, 401, None)]


async def test_the_body_cap_still_answers_first(make_container: Callable[..., Container]) -> None:
    async with in_process_client(make_container(max_body_bytes=1024)) as http:
        account = await with_posts(http)

        answer = await http.request("GET", GET_POSTS, headers=account.auth, content=b"x" * 2048)

    assert answer.status_code == 413


async def test_it_takes_an_admission_slot_like_any_request(make_container: Callable[..., Container]) -> None:
    container = make_container(max_in_flight=1, max_queued=0)
    cache = GatedFillCache()
    container.posts_cache.override(providers.Object(cache))
    async with in_process_client(container) as http:
        cache.gate.set()
        account = await with_posts(http)
        cache.gate.clear()
        cache.fill_reached.clear()
        # Its fill (of the session's vouch, dropped by the last add) waits at the gate, holding the
        # only slot.
        first = asyncio.ensure_future(http.get(GET_POSTS, headers=account.auth))
        await asyncio.wait_for(cache.fill_reached.wait(), 5)

        shed = await http.get(GET_POSTS, headers=account.auth)
        cache.gate.set()
        served = await first

    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert served.status_code == 200


@pytest.mark.parametrize(
    ("authorization", "body"),
    [
        (None, b'{"text": "hello"}'),
        ("Bearer not-a-jwt", b'{"text": "hello"}'),
        ("mine", b'{"text": ""}'),
        ("mine", b'{"text": 5}'),
        ("mine", b'{"txt": "hello"}'),
        ("mine", b"not json"),
        ("mine", b'"text"'),
        ("mine", b""),
        ("mine", '{"text": "%s"}' % ("x" * 2000)),
    ],
)
async def test_an_add_refused_gets_the_same_answer(
    make_container: Callable[..., Container], authorization: str | None, body: bytes | str
) -> None:
    async with in_process_client(make_container(post_limits="off", max_post_bytes=1000)) as http:
        account = await register(http)
        headers = {"Content-Type": "application/json"}
        if authorization == "mine":
            headers.update(account.auth)
        elif authorization is not None:
            headers["Authorization"] = authorization

        shortcut = await http.post(ADD_POST, headers=headers, content=body)
        routed = await http.post(ROUTED_ADD, headers=headers, content=body)
        listed = (await http.get(GET_POSTS, headers=account.auth)).json()

    assert shortcut.status_code in (401, 413, 422)
    same_answer(shortcut, routed)
    assert listed == []


async def test_an_add_gets_the_same_answer_and_both_posts_are_kept(http: httpx.AsyncClient) -> None:
    account = await register(http)

    shortcut = await http.post(ADD_POST, headers=account.auth, json={"text": "first"})
    routed = await http.post(ROUTED_ADD, headers=account.auth, json={"text": "second"})

    assert shortcut.status_code == 200
    listed = (await http.get(GET_POSTS, headers=account.auth)).json()
    assert [(post["id"], post["text"]) for post in listed] == [
        (shortcut.json()["PostID"], "first"),
        (routed.json()["PostID"], "second"),
    ]
    assert shortcut.json() == {**routed.json(), "PostID": shortcut.json()["PostID"]}
    same_answer(
        httpx.Response(shortcut.status_code, headers=shortcut.headers, content=b""),
        httpx.Response(routed.status_code, headers=routed.headers, content=b""),
    )


async def test_an_add_with_the_store_down_gets_the_same_503(make_container: Callable[..., Container]) -> None:
    container = make_container(post_limits="off")
    container.uow.override(providers.Object(DownUnitOfWork))
    container.posts_cache.override(providers.Object(DownCache()))
    token = container.tokens().issue(1, "a-session").value
    async with in_process_client(container) as http:
        shortcut = await http.post(ADD_POST, headers=bearer(token), json={"text": "lost"})
        routed = await http.post(ROUTED_ADD, headers=bearer(token), json={"text": "lost"})

    assert shortcut.status_code == 503
    same_answer(shortcut, routed)


async def test_an_add_is_counted_and_logged_as_its_route_and_capped(
    make_container: Callable[..., Container], caplog: pytest.LogCaptureFixture
) -> None:
    async with in_process_client(make_container(post_limits="off", max_body_bytes=1024)) as http:
        account = await register(http)
        caplog.set_level(logging.INFO)

        assert (await http.post(ADD_POST, headers=account.auth, json={"text": "kept"})).status_code == 200
        too_long = await http.post(ADD_POST, headers=account.auth, json={"text": "x" * 2048})
        text = (await http.get("/metrics")).text

    assert too_long.status_code == 413
    assert value(text, "http_requests_total", route=ADD_POST, method="POST", status="200") == 1
    logged = [(r.status, r.user_id) for r in access_records(caplog) if r.path == ADD_POST]  # type: ignore[attr-defined]
    assert logged == [(200, account.id), (413, None)]
