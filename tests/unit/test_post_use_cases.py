from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Self

import pytest

from adapters.cache.memory import InProcessPostsCache
from adapters.limits import in_process_limiter
from adapters.memory import InMemoryUnitOfWork
from application.limits import RateLimit
from application.ports import PostsCache
from application.posts import AddPost, DeletePost, GetPosts, RenderedPosts, _joined
from domain.errors import (
    InvalidPostText,
    NotAuthenticated,
    PostQuotaExceeded,
    PostTooLarge,
    StorageUnavailable,
)
from domain.ports import UnitOfWork, UnitOfWorkFactory
from domain.posts import Post, PostQuota
from domain.users import Email, NewUser, User
from tests.unit.fakes import (
    CountingStorage,
    CountingUnitOfWork,
    DownCache,
    DownUnitOfWork,
    FixedClock,
    GatedFillCache,
    TextsRenderer,
)

MAX_BYTES = 1_048_576


def unlimited_add(uow: UnitOfWorkFactory, cache: PostsCache) -> AddPost:
    return AddPost(uow, cache, MAX_BYTES, RateLimit(in_process_limiter(), "post", ()), PostQuota())


async def read_whole(result: RenderedPosts) -> tuple[bytes, int]:
    """The whole rendering, and in how many pieces it came."""
    pieces = [result.payload]
    if result.rest is not None:
        pieces += [piece async for piece in result.rest]
    return b"".join(pieces), len(pieces)


class World:
    """The post use cases on the in-memory store (counted) and a cache of the test's choosing."""

    def __init__(self, cache: PostsCache | None = None, uow: UnitOfWorkFactory | None = None) -> None:
        self.clock = FixedClock()
        self.storage = CountingStorage(self.clock)
        self.cache = cache if cache is not None else InProcessPostsCache(ttl_seconds=300)
        factory = uow if uow is not None else self.storage
        self.add = unlimited_add(factory, self.cache)
        self.get = GetPosts(factory, self.cache)
        self.delete = DeletePost(factory, self.cache)
        self.renderer = TextsRenderer()

    async def user(self, email: str = "owner@example.com") -> int:
        async with InMemoryUnitOfWork(self.storage.store, self.clock) as uow:
            user = await uow.users.add(NewUser(Email.parse(email), "hash", self.clock.now()))
            await uow.commit()
        return user.id

    async def texts(self, user_id: int) -> tuple[list[str], bool]:
        result = await self.get.execute(user_id, self.renderer)
        body, _ = await read_whole(result)
        return json.loads(body), result.from_cache


@pytest.fixture
def world() -> World:
    return World()


async def test_added_posts_are_listed_oldest_first(world: World) -> None:
    owner = await world.user()
    first = await world.add.execute(owner, "first")
    world.clock.advance(1)
    second = await world.add.execute(owner, "second")

    assert first < second
    assert await world.texts(owner) == (["first", "second"], False)
    stored = world.storage.store.posts_by_owner[owner]
    assert [post.created_at for post in stored.values()] == [
        datetime.fromisoformat("2026-11-20T22:21:00+00:00"),
        datetime.fromisoformat("2026-11-20T22:21:01+00:00"),
    ]


async def test_a_user_lists_only_their_own_posts(world: World) -> None:
    alice = await world.user("alice@example.com")
    bob = await world.user("bob@example.com")
    await world.add.execute(alice, "alice's")
    await world.add.execute(bob, "bob's")

    assert (await world.texts(alice))[0] == ["alice's"]
    assert (await world.texts(bob))[0] == ["bob's"]


async def test_a_user_without_posts_gets_an_empty_list(world: World) -> None:
    assert await world.texts(await world.user()) == ([], False)


async def test_second_read_is_served_from_the_cache_without_touching_any_repository(world: World) -> None:
    owner = await world.user()
    await world.add.execute(owner, "hello")
    first = await world.get.execute(owner, world.renderer)
    calls_before = world.storage.calls.total

    second = await world.get.execute(owner, world.renderer)

    assert (first.from_cache, second.from_cache) == (False, True)
    assert second.payload == first.payload
    assert world.storage.calls.total == calls_before


async def test_a_miss_reads_the_database_once(world: World) -> None:
    owner = await world.user()
    before = world.storage.calls.uows_opened

    await world.get.execute(owner, world.renderer)

    assert world.storage.calls.uows_opened == before + 1


async def test_cache_entries_are_per_view(world: World) -> None:
    owner = await world.user()
    await world.add.execute(owner, "hello")
    await world.get.execute(owner, world.renderer)

    other_view = await world.get.execute(owner, TextsRenderer(view="other"))

    assert other_view.from_cache is False


async def test_cache_entries_are_per_user(world: World) -> None:
    alice = await world.user("alice@example.com")
    bob = await world.user("bob@example.com")
    await world.add.execute(alice, "alice's")
    await world.texts(alice)

    assert await world.texts(bob) == ([], False)


async def test_add_post_invalidates_the_owners_cached_list(world: World) -> None:
    owner = await world.user()
    await world.add.execute(owner, "one")
    await world.texts(owner)
    await world.add.execute(owner, "two")

    assert await world.texts(owner) == (["one", "two"], False)


async def test_add_post_by_another_user_keeps_my_cached_list(world: World) -> None:
    alice = await world.user("alice@example.com")
    bob = await world.user("bob@example.com")
    await world.add.execute(alice, "alice's")
    await world.texts(alice)
    await world.add.execute(bob, "bob's")

    assert await world.texts(alice) == (["alice's"], True)


async def test_delete_post_invalidates_the_owners_cached_list(world: World) -> None:
    owner = await world.user()
    post_id = await world.add.execute(owner, "doomed")
    await world.texts(owner)

    await world.delete.execute(owner, post_id)

    assert await world.texts(owner) == ([], False)


async def test_delete_of_someone_elses_post_deletes_nothing_and_post_survives(world: World) -> None:
    alice = await world.user("alice@example.com")
    mallory = await world.user("mallory@example.com")
    post_id = await world.add.execute(alice, "mine")

    assert await world.delete.execute(mallory, post_id) is False

    assert (await world.texts(alice))[0] == ["mine"]


async def test_delete_of_a_missing_post_deletes_nothing(world: World) -> None:
    owner = await world.user()
    post_id = await world.add.execute(owner, "once")
    assert await world.delete.execute(owner, post_id) is True

    assert await world.delete.execute(owner, post_id) is False


async def test_add_post_rejects_empty_text_and_stores_nothing(world: World) -> None:
    owner = await world.user()
    with pytest.raises(InvalidPostText):
        await world.add.execute(owner, "")
    assert world.storage.store.owner_by_post == {}


async def test_add_post_over_the_byte_limit_is_too_large_and_stores_nothing(world: World) -> None:
    owner = await world.user()
    with pytest.raises(PostTooLarge):
        await world.add.execute(owner, "é" * (MAX_BYTES // 2 + 1))
    assert world.storage.store.owner_by_post == {}


async def test_add_post_at_the_byte_limit_round_trips_exactly(world: World) -> None:
    owner = await world.user()
    text = "a😀é" * (MAX_BYTES // 7) + "a" * (MAX_BYTES % 7)
    assert len(text.encode()) == MAX_BYTES

    await world.add.execute(owner, text)

    assert (await world.texts(owner))[0] == [text]


async def test_add_post_for_a_user_who_does_not_exist_is_not_authenticated(world: World) -> None:
    with pytest.raises(NotAuthenticated):
        await world.add.execute(12345, "ghost")


async def test_get_posts_for_a_user_who_does_not_exist_is_not_authenticated(world: World) -> None:
    with pytest.raises(NotAuthenticated):
        await world.get.execute(12345, world.renderer)


async def test_a_reader_that_loaded_before_a_write_does_not_store_its_stale_list() -> None:
    cache = GatedFillCache()
    world = World(cache=cache)
    owner = await world.user()
    await world.add.execute(owner, "old")

    # The reader loads ["old"] and stops just before filling the cache.
    reader = asyncio.create_task(world.get.execute(owner, world.renderer))
    await cache.fill_reached.wait()
    # Meanwhile the owner writes; the write is acknowledged and invalidates the cache.
    await world.add.execute(owner, "new")
    # Now the reader fills with what it loaded before the write.
    cache.gate.set()
    stale: RenderedPosts = await reader

    assert json.loads(stale.payload) == ["old"]
    texts, from_cache = await world.texts(owner)
    assert texts == ["old", "new"]
    assert from_cache is False


async def test_a_reader_that_loaded_before_a_delete_does_not_resurrect_the_post() -> None:
    cache = GatedFillCache()
    world = World(cache=cache)
    owner = await world.user()
    post_id = await world.add.execute(owner, "doomed")

    reader = asyncio.create_task(world.get.execute(owner, world.renderer))
    await cache.fill_reached.wait()
    await world.delete.execute(owner, post_id)
    cache.gate.set()
    await reader

    assert await world.texts(owner) == ([], False)


async def test_a_fill_after_no_write_is_served_next_time() -> None:
    cache = GatedFillCache()
    cache.gate.set()
    world = World(cache=cache)
    owner = await world.user()
    await world.add.execute(owner, "steady")

    await world.texts(owner)

    assert await world.texts(owner) == (["steady"], True)


async def test_with_the_cache_down_reads_come_from_the_database() -> None:
    cache = DownCache()
    world = World(cache=cache)
    owner = await world.user()
    await world.add.execute(owner, "still here")

    first = await world.texts(owner)
    second = await world.texts(owner)

    assert first == second == (["still here"], False)
    assert cache.attempts > 0


async def test_with_the_cache_down_writes_still_succeed() -> None:
    world = World(cache=DownCache())
    owner = await world.user()

    post_id = await world.add.execute(owner, "written")
    await world.delete.execute(owner, post_id)

    assert world.storage.store.owner_by_post == {}


async def test_with_storage_down_every_use_case_raises_storage_unavailable() -> None:
    cache = InProcessPostsCache(ttl_seconds=300)
    world = World(cache=cache, uow=DownUnitOfWork)

    with pytest.raises(StorageUnavailable):
        await world.add.execute(1, "text")
    with pytest.raises(StorageUnavailable):
        await world.get.execute(1, world.renderer)
    with pytest.raises(StorageUnavailable):
        await world.delete.execute(1, 1)


async def test_a_failed_write_leaves_the_cached_list_in_place() -> None:
    cache = InProcessPostsCache(ttl_seconds=300)
    healthy = World(cache=cache)
    owner = await healthy.user()
    await healthy.add.execute(owner, "kept")
    await healthy.texts(owner)
    broken = unlimited_add(DownUnitOfWork, cache)

    with pytest.raises(StorageUnavailable):
        await broken.execute(owner, "lost")

    assert await healthy.texts(owner) == (["kept"], True)


async def test_cached_list_expires_after_the_ttl() -> None:
    now = [0.0]
    cache = InProcessPostsCache(ttl_seconds=300, timer=lambda: now[0])
    world = World(cache=cache)
    owner = await world.user()
    await world.add.execute(owner, "hello")
    await world.texts(owner)

    now[0] = 299.0
    assert (await world.texts(owner))[1] is True
    now[0] = 301.0
    assert (await world.texts(owner))[1] is False


async def test_a_list_larger_than_the_whole_cache_is_served_uncached() -> None:
    cache = InProcessPostsCache(ttl_seconds=300, max_bytes=16)
    world = World(cache=cache)
    owner = await world.user()
    await world.add.execute(owner, "a text longer than sixteen bytes")

    first = await world.texts(owner)
    second = await world.texts(owner)

    assert first == second == (["a text longer than sixteen bytes"], False)


async def test_a_long_list_is_read_page_by_page_and_handed_out_as_it_is_rendered(world: World) -> None:
    owner = await world.user()
    texts = [f"{number:02} " + "x" * 1000 for number in range(40)]
    for text in texts:
        await world.add.execute(owner, text)
    get = GetPosts(world.storage, world.cache, page_bytes=4_000, stream_after_bytes=8_000)
    opened = world.storage.calls.uows_opened

    result = await get.execute(owner, world.renderer)
    body, pieces = await read_whole(result)

    assert result.rest is not None
    assert json.loads(body) == texts
    assert pieces > 3
    # A unit of work per page: none is held while the rendering is handed out.
    assert world.storage.calls.uows_opened - opened > 3
    again = await get.execute(owner, world.renderer)
    assert (again.from_cache, again.payload) == (True, body)


async def test_a_list_over_the_cache_entry_limit_is_served_every_time_and_never_cached(world: World) -> None:
    owner = await world.user()
    for number in range(20):
        await world.add.execute(owner, f"{number:02} " + "x" * 1000)
    get = GetPosts(world.storage, world.cache, max_entry_bytes=10_000)

    first = await get.execute(owner, world.renderer)
    second = await get.execute(owner, world.renderer)

    assert (first.from_cache, second.from_cache) == (False, False)
    first_body, _ = await read_whole(first)
    second_body, _ = await read_whole(second)
    assert first_body == second_body
    assert len(json.loads(first_body)) == 20


async def test_adds_of_one_user_that_arrive_together_are_committed_together_in_order(world: World) -> None:
    owner = await world.user()
    before = world.storage.calls.uows_opened

    ids = await asyncio.gather(*(world.add.execute(owner, f"post {n}") for n in range(20)))

    assert world.storage.calls.uows_opened - before == 1
    assert ids == sorted(set(ids))
    assert (await world.texts(owner))[0] == [f"post {n}" for n in range(20)]


async def test_a_group_holds_at_most_max_group_posts(world: World) -> None:
    owner = await world.user()
    before = world.storage.calls.uows_opened

    await asyncio.gather(*(world.add.execute(owner, "x") for _ in range(AddPost.MAX_GROUP_POSTS + 1)))

    assert world.storage.calls.uows_opened - before == 2


async def test_adds_of_different_users_are_never_grouped(world: World) -> None:
    owners = [await world.user(f"owner{n}@example.com") for n in range(3)]
    before = world.storage.calls.uows_opened

    await asyncio.gather(*(world.add.execute(owner, "x") for owner in owners))

    assert world.storage.calls.uows_opened - before == 3


async def test_a_group_past_the_quota_keeps_the_posts_that_fit_in_order() -> None:
    world = World()
    owner = await world.user()
    add = AddPost(
        world.storage, world.cache, MAX_BYTES, RateLimit(in_process_limiter(), "post", ()), PostQuota(3)
    )

    outcomes = await asyncio.gather(
        *(add.execute(owner, f"post {n}") for n in range(5)), return_exceptions=True
    )

    assert [type(outcome) for outcome in outcomes[3:]] == [PostQuotaExceeded, PostQuotaExceeded]
    assert all(isinstance(outcome, int) for outcome in outcomes[:3])
    assert (await world.texts(owner))[0] == ["post 0", "post 1", "post 2"]


async def test_a_request_that_goes_away_before_its_group_is_written_stores_nothing(world: World) -> None:
    owner = await world.user()
    kept = asyncio.ensure_future(world.add.execute(owner, "kept"))
    gone = asyncio.ensure_future(world.add.execute(owner, "gone"))
    await asyncio.sleep(0)

    gone.cancel()

    await kept
    assert (await world.texts(owner))[0] == ["kept"]


async def test_with_storage_down_every_add_of_a_group_is_told() -> None:
    world = World(uow=DownUnitOfWork)

    outcomes = await asyncio.gather(*(world.add.execute(1, "x") for _ in range(3)), return_exceptions=True)

    assert [type(outcome) for outcome in outcomes] == [StorageUnavailable] * 3


async def test_when_the_store_fails_the_adds_queued_behind_the_group_are_told_at_once() -> None:
    world = World()
    owner = await world.user()
    opened = asyncio.Event()
    release = asyncio.Event()
    opens: list[None] = []

    class Failing(CountingUnitOfWork):
        async def __aenter__(self) -> Self:
            opens.append(None)
            opened.set()
            await release.wait()
            raise StorageUnavailable("timed out")

    add = unlimited_add(lambda: Failing(world.storage.store, world.storage.calls, world.clock), world.cache)
    first = asyncio.ensure_future(add.execute(owner, "first"))
    await opened.wait()
    behind = [asyncio.ensure_future(add.execute(owner, f"behind {n}")) for n in range(3)]
    await asyncio.sleep(0)

    release.set()

    outcomes = await asyncio.gather(first, *behind, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [StorageUnavailable] * 4
    assert len(opens) == 1


class SlicingRenderer(TextsRenderer):
    """Each post's text in three slices, noting in `events` when each is made."""

    def __init__(self, events: list[str]) -> None:
        super().__init__("sliced")
        self.events = events

    def render(self, owner: User, posts: Sequence[Post], *, first: bool, last: bool) -> Iterator[bytes]:
        yield b"[" if first else b","
        for number, post in enumerate(posts):
            text = post.text.value
            yield (b"," if number else b"") + b'"'
            for start in range(0, len(text), len(text) // 3 + 1):
                self.events.append("slice")
                yield text[start : start + len(text) // 3 + 1].encode()
            yield b'"'
        yield b"]" if last else b""


async def test_between_the_slices_of_a_long_post_others_are_served_and_the_slices_go_out_joined(
    world: World,
) -> None:
    owner = await world.user()
    for number in range(3):
        await world.add.execute(owner, f"{number}" + "x" * 20_000)
    events: list[str] = []
    get = GetPosts(world.storage, world.cache, stream_after_bytes=1_000)

    async def others() -> None:
        while True:
            events.append("other")
            await asyncio.sleep(0)

    other = asyncio.ensure_future(others())
    try:
        body, pieces = await read_whole(await get.execute(owner, SlicingRenderer(events)))
    finally:
        other.cancel()

    assert json.loads(body) == [f"{number}" + "x" * 20_000 for number in range(3)]
    # Handed out joined, a piece per page (the first page holds one post, the next the other two),
    # where the slices were 7 or more per page.
    assert pieces == 2
    made = [index for index, event in enumerate(events) if event == "slice"]
    assert len(made) == 9
    assert all("other" in events[before:after] for before, after in itertools.pairwise(made))


def test_the_slices_of_a_page_are_let_go_as_their_pieces_go_out() -> None:
    """What a slow client has yet to take of a page is all its answer holds of it."""
    slices = [bytes([number]) * 100 for number in range(10)]

    pieces = _joined(slices, 250)
    first = next(pieces)

    assert first == b"".join(bytes([number]) * 100 for number in range(3))
    assert sorted(slices) == [bytes([number]) * 100 for number in range(3, 10)]
    assert list(pieces) == [
        b"".join(bytes([number]) * 100 for number in range(3, 6)),
        b"".join(bytes([number]) * 100 for number in range(6, 9)),
        bytes([9]) * 100,
    ]
    assert slices == []


async def reading_under_way(*texts: str) -> tuple[World, GatedFillCache, int, asyncio.Future[RenderedPosts]]:
    """A world whose owner has posted `texts`, and the first miss of their list: read, rendered, and
    held at the cache's gate."""
    cache = GatedFillCache()
    world = World(cache)
    owner = await world.user()
    for text in texts:
        await world.add.execute(owner, text)
    first = asyncio.ensure_future(world.get.execute(owner, world.renderer))
    await cache.fill_reached.wait()
    return world, cache, owner, first


async def test_misses_of_one_list_while_it_is_being_read_share_that_reading() -> None:
    world, cache, owner, first = await reading_under_way("post 0", "post 1", "post 2")
    opened = world.storage.calls.uows_opened

    others = [asyncio.ensure_future(world.get.execute(owner, world.renderer)) for _ in range(20)]
    await asyncio.sleep(0)
    cache.gate.set()
    results = await asyncio.gather(first, *others)

    assert world.storage.calls.uows_opened == opened
    assert {result.payload for result in results} == {b'["post 0","post 1","post 2"]'}
    assert len({result.tag for result in results}) == 1


async def test_a_miss_after_a_write_does_not_share_the_reading_made_before_it() -> None:
    world, cache, owner, early = await reading_under_way("before")
    await world.add.execute(owner, "after")
    # The early reading is still under way (its fill waits) when the late miss looks for one.
    cache.gate.set()
    assert not early.done()

    late = await world.get.execute(owner, world.renderer)

    assert (await read_whole(late))[0] == b'["before","after"]'
    assert (await read_whole(await early))[0] == b'["before"]'


class StalledStore:
    """A database that answers nothing until `gate` opens, and then fails."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.opened = 0

    def __call__(self) -> UnitOfWork:
        self.opened += 1
        return _StalledUnitOfWork(self.gate)


class _StalledUnitOfWork(DownUnitOfWork):
    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self._gate = gate

    async def __aenter__(self) -> Self:
        await self._gate.wait()
        return self


async def test_misses_waiting_on_a_reading_that_fails_get_its_error() -> None:
    store = StalledStore()
    get = GetPosts(store, InProcessPostsCache(ttl_seconds=300))
    readers = [asyncio.ensure_future(get.execute(1, TextsRenderer())) for _ in range(5)]
    await asyncio.sleep(0)

    store.gate.set()
    outcomes = await asyncio.gather(*readers, return_exceptions=True)

    assert all(isinstance(outcome, StorageUnavailable) for outcome in outcomes)
    assert store.opened == 1


async def test_when_the_first_reader_goes_away_the_others_read_for_themselves() -> None:
    world, cache, owner, first = await reading_under_way("hello")
    others = [asyncio.ensure_future(world.get.execute(owner, world.renderer)) for _ in range(3)]
    await asyncio.sleep(0)
    opened = world.storage.calls.uows_opened

    first.cancel()
    cache.gate.set()
    outcomes = await asyncio.gather(first, *others, return_exceptions=True)

    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert [
        (await read_whole(outcome))[0] for outcome in outcomes[1:] if isinstance(outcome, RenderedPosts)
    ] == [b'["hello"]'] * 3
    assert world.storage.calls.uows_opened > opened
