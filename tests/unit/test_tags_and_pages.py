"""get-posts' tag (the ETag behind conditional GET) and its pages, at the use-case level."""

from __future__ import annotations

import json

import pytest

from application.posts import Page, RenderedPosts
from domain.posts import PostPosition
from tests.unit.fakes import DownCache
from tests.unit.test_post_use_cases import World


@pytest.fixture
def world() -> World:
    return World()


async def texts_of(rendered: RenderedPosts) -> list[str]:
    texts: list[str] = json.loads(rendered.payload)
    return texts


async def test_a_current_cached_list_gives_its_tag_without_touching_the_repository(world: World) -> None:
    owner = await world.user()
    await world.add.execute(owner, "one")
    first = await world.get.execute(owner, world.renderer)
    calls = world.storage.calls.repository_calls

    again = await world.get.execute(owner, world.renderer)

    assert again.from_cache
    assert again.tag == first.tag
    assert world.storage.calls.repository_calls == calls


async def test_every_write_of_the_owner_changes_the_tag(world: World) -> None:
    owner = await world.user()
    tags = [(await world.get.execute(owner, world.renderer)).tag]
    post_id = await world.add.execute(owner, "one")
    tags.append((await world.get.execute(owner, world.renderer)).tag)
    await world.add.execute(owner, "two")
    tags.append((await world.get.execute(owner, world.renderer)).tag)
    await world.delete.execute(owner, post_id)
    tags.append((await world.get.execute(owner, world.renderer)).tag)
    assert len(set(tags)) == len(tags)


async def test_tags_differ_between_users_and_views_of_the_same_posts(world: World) -> None:
    alice, bob = await world.user("alice@example.com"), await world.user("bob@example.com")
    alice_list = await world.get.execute(alice, world.renderer)
    bob_list = await world.get.execute(bob, world.renderer)
    page = await world.get.execute(alice, world.renderer, Page(10))
    assert alice_list.payload == bob_list.payload == page.payload == b"[]"
    assert len({alice_list.tag, bob_list.tag, page.tag}) == 3


async def test_with_the_cache_down_the_tag_follows_the_list_from_the_store() -> None:
    world = World(cache=DownCache())
    owner = await world.user()
    await world.add.execute(owner, "one")
    first = await world.get.execute(owner, world.renderer)
    assert (await world.get.execute(owner, world.renderer)).tag == first.tag
    await world.add.execute(owner, "two")
    assert (await world.get.execute(owner, world.renderer)).tag != first.tag


async def walk(world: World, owner: int, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after: PostPosition | None = None
    while True:
        page = await world.get.execute(owner, world.renderer, Page(limit, after))
        pages.append(await texts_of(page))
        if page.next_after is None:
            return pages
        after = page.next_after


async def test_pages_walk_the_whole_list_oldest_first(world: World) -> None:
    owner = await world.user()
    for number in range(7):
        world.clock.advance(1)
        await world.add.execute(owner, str(number))
    assert await walk(world, owner, 3) == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert await walk(world, owner, 7) == [[str(number) for number in range(7)]]
    assert await walk(world, owner, 1000) == [[str(number) for number in range(7)]]


async def test_posts_with_the_same_timestamp_are_paged_by_id_without_loss(world: World) -> None:
    owner = await world.user()
    for number in range(5):
        await world.add.execute(owner, str(number))
    assert await walk(world, owner, 2) == [["0", "1"], ["2", "3"], ["4"]]


async def test_a_cursor_stays_valid_when_posts_around_it_are_deleted(world: World) -> None:
    owner = await world.user()
    ids = []
    for number in range(6):
        world.clock.advance(1)
        ids.append(await world.add.execute(owner, str(number)))
    first = await world.get.execute(owner, world.renderer, Page(2))
    assert first.next_after is not None
    # The post the cursor names, one before it and one after it.
    for post_id in (ids[1], ids[0], ids[2]):
        await world.delete.execute(owner, post_id)
    rest = await world.get.execute(owner, world.renderer, Page(2, first.next_after))
    assert await texts_of(rest) == ["3", "4"]


async def test_pages_are_cached_and_one_write_invalidates_every_page(world: World) -> None:
    owner = await world.user()
    for number in range(4):
        world.clock.advance(1)
        await world.add.execute(owner, str(number))
    first = await world.get.execute(owner, world.renderer, Page(2))
    second = await world.get.execute(owner, world.renderer, Page(2, first.next_after))
    calls = world.storage.calls.repository_calls
    cached_first = await world.get.execute(owner, world.renderer, Page(2))
    cached_second = await world.get.execute(owner, world.renderer, Page(2, first.next_after))
    assert (cached_first.from_cache, cached_second.from_cache) == (True, True)
    assert (cached_first.next_after, cached_second.next_after) == (first.next_after, None)
    assert (cached_first.tag, cached_second.tag) == (first.tag, second.tag)
    assert world.storage.calls.repository_calls == calls

    world.clock.advance(1)
    await world.add.execute(owner, "4")
    again_first = await world.get.execute(owner, world.renderer, Page(2))
    again_second = await world.get.execute(owner, world.renderer, Page(2, first.next_after))
    assert not again_first.from_cache
    assert not again_second.from_cache
    assert await texts_of(again_second) == ["2", "3"]
    assert again_second.next_after is not None


def test_a_position_round_trips_through_microseconds() -> None:
    position = PostPosition.at(1_795_731_660_123_456, 42)
    assert PostPosition.at(position.microseconds, position.id) == position
    with pytest.raises(OverflowError):
        PostPosition.at(2**62, 1)
