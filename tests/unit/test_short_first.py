"""Long answers give way to the process's other requests (application/precedence.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterator, Sequence

import pytest
from starlette.types import Message, Receive, Scope, Send

from application.posts import GetPosts, RenderedPosts
from application.precedence import ShortFirst
from domain.posts import Post
from domain.users import User
from entrypoints.http.errors import server_error
from entrypoints.http.request_log import RequestLog
from tests.unit.fakes import TextsRenderer
from tests.unit.test_post_use_cases import World, read_whole


async def turns_for_others(awaitable: Awaitable[object]) -> int:
    """How many turns of the event loop another task had while `awaitable` ran."""
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await awaitable
    taken = ticks - before
    running = False
    await task
    return taken


async def test_a_long_answer_alone_takes_one_turn_a_step() -> None:
    short_first = ShortFirst(turns=8)
    short_first.started()
    with short_first.long_answer():
        assert await turns_for_others(short_first.give_way()) == 1


async def test_a_long_answer_lets_other_requests_under_way_have_its_turns_first() -> None:
    short_first = ShortFirst(turns=8)
    short_first.started()
    short_first.started()
    with short_first.long_answer():
        assert await turns_for_others(short_first.give_way()) == 8
        short_first.finished()
        assert await turns_for_others(short_first.give_way()) == 1


async def test_long_answers_do_not_give_way_to_each_other() -> None:
    short_first = ShortFirst(turns=8)
    short_first.started()
    short_first.started()
    with short_first.long_answer(), short_first.long_answer():
        assert await turns_for_others(short_first.give_way()) == 1


class SlicedTexts:
    """The texts of a page, as TextsRenderer renders them, in slices of `size` bytes."""

    view = "sliced"

    def __init__(self, size: int) -> None:
        self._size = size

    def render(self, owner: User, posts: Sequence[Post], *, first: bool, last: bool) -> Iterator[bytes]:
        texts = b",".join(json.dumps(post.text.value).encode() for post in posts)
        whole = (b"[" if first else b"," if texts else b"") + texts + (b"]" if last else b"")
        for start in range(0, len(whole), self._size):
            yield whole[start : start + self._size]


async def test_a_streamed_list_gives_way_between_its_slices_while_another_request_is_under_way() -> None:
    world = World()
    owner = await world.user()
    texts = [f"{number:02} " + "x" * 8_000 for number in range(6)]
    for text in texts:
        await world.add.execute(owner, text)
    short_first = ShortFirst(turns=8)
    get = GetPosts(
        world.storage,
        world.cache,
        # Never cached: both reads stream it from the store.
        max_entry_bytes=1_000,
        page_bytes=8_000,
        stream_after_bytes=1_000,
        short_first=short_first,
    )
    renderer = SlicedTexts(1_000)

    async def read() -> bytes:
        # Each read is a request of its own, as the request log would count it.
        short_first.started()
        try:
            result: RenderedPosts = await get.execute(owner, renderer)
            assert result.rest is not None
            body, _ = await read_whole(result)
            return body
        finally:
            short_first.finished()

    alone = await turns_for_others(read())
    short_first.started()
    beside_another = await turns_for_others(read())
    short_first.finished()

    assert alone >= 6 * 8
    assert beside_another >= 7 * alone
    assert short_first.requests_under_way == 0


def _scope() -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/posts/get-posts",
        "raw_path": b"/api/v1/posts/get-posts",
        "headers": [],
        "query_string": b"",
    }


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


@pytest.mark.parametrize("fails", [False, True])
async def test_the_request_log_counts_every_request_while_it_is_under_way(fails: bool) -> None:
    short_first = ShortFirst()
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(short_first.requests_under_way)
        if fails:
            raise RuntimeError("the handler failed")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await RequestLog(app, server_error, short_first=short_first)(_scope(), _nothing, send)

    assert seen == [1]
    assert short_first.requests_under_way == 0
    assert sent[0]["status"] == (500 if fails else 200)


async def test_a_long_answer_gives_way_for_a_bounded_time_when_turns_are_long() -> None:
    """Under a heavy load each turn serves many requests: the long answer still moves on."""
    now = 0.0

    def clock() -> float:
        # Every reading is a turn later, and each turn takes 1 ms.
        nonlocal now
        now += 0.001
        return now

    short_first = ShortFirst(turns=16, max_wait_seconds=0.004, clock=clock)
    short_first.started()
    short_first.started()
    with short_first.long_answer():
        assert await turns_for_others(short_first.give_way()) == 5


async def test_a_short_list_read_from_the_store_does_not_wait_for_others() -> None:
    world = World()
    owner = await world.user()
    for number in range(20):
        await world.add.execute(owner, f"post {number}")
    short_first = ShortFirst(turns=8)
    # Two pages (one post, then the rest), never cached, a single slice each.
    get = GetPosts(world.storage, world.cache, max_entry_bytes=10, short_first=short_first)
    short_first.started()
    short_first.started()

    async def read() -> None:
        result = await get.execute(owner, TextsRenderer())
        assert len(json.loads(result.payload)) == 20

    assert await turns_for_others(read()) < 8
