"""Quotas are part of the storage contract: every backend counts a user's posts and bytes with the insert."""

from __future__ import annotations

import asyncio

import pytest

from domain.errors import PostQuotaExceeded
from domain.ports import UnitOfWorkFactory
from domain.posts import NewPost, PostQuota, PostText
from domain.users import User
from tests.contract.test_unit_of_work import add_post, add_user


async def try_add(uow: UnitOfWorkFactory, owner: User, text: str, quota: PostQuota) -> int:
    async with uow() as work:
        (post_id,) = await work.posts.add_all([NewPost(owner.id, PostText(text))], quota)
        await work.commit()
    return post_id


async def texts(uow: UnitOfWorkFactory, owner: User) -> list[str]:
    async with uow() as work:
        return [post.text.value for post in await work.posts.list_by_owner(owner.id)]


async def test_an_add_past_the_post_count_quota_stores_nothing(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    quota = PostQuota(max_posts=2)
    await try_add(uow, owner, "one", quota)
    await try_add(uow, owner, "two", quota)

    with pytest.raises(PostQuotaExceeded):
        await try_add(uow, owner, "three", quota)

    assert await texts(uow, owner) == ["one", "two"]


async def test_the_byte_quota_counts_utf8_bytes_and_is_per_user(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    other = await add_user(uow, "other@example.com")
    quota = PostQuota(max_bytes=10)
    await try_add(uow, owner, "éééé", quota)  # 8 bytes

    with pytest.raises(PostQuotaExceeded):
        await try_add(uow, owner, "abc", quota)
    await try_add(uow, owner, "ab", quota)
    await try_add(uow, other, "0123456789", quota)

    assert await texts(uow, owner) == ["éééé", "ab"]


async def test_deleting_a_post_gives_its_count_and_bytes_back(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    quota = PostQuota(max_posts=1, max_bytes=5)
    first = await try_add(uow, owner, "12345", quota)
    async with uow() as work:
        assert await work.posts.delete(first, owner.id)
        await work.commit()

    await try_add(uow, owner, "abcde", quota)

    assert await texts(uow, owner) == ["abcde"]


async def test_a_delete_rolled_back_or_of_nothing_gives_nothing_back(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    quota = PostQuota(max_posts=1)
    post = await try_add(uow, owner, "kept", quota)
    async with uow() as work:
        assert await work.posts.delete(post, owner.id)
    async with uow() as work:
        assert not await work.posts.delete(post + 1000, owner.id)
        await work.commit()

    with pytest.raises(PostQuotaExceeded):
        await try_add(uow, owner, "more", quota)


async def test_concurrent_adds_cannot_overshoot_the_quota(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    quota = PostQuota(max_posts=3)

    results = await asyncio.gather(
        *(try_add(uow, owner, f"post {n}", quota) for n in range(8)), return_exceptions=True
    )

    assert sum(isinstance(result, int) for result in results) == 3
    assert all(isinstance(result, int | PostQuotaExceeded) for result in results), results
    assert len(await texts(uow, owner)) == 3


async def test_posts_added_without_a_quota_still_count_towards_a_later_one(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    await add_post(uow, owner, "free")

    with pytest.raises(PostQuotaExceeded):
        await try_add(uow, owner, "capped", PostQuota(max_posts=1))


async def test_posts_added_together_are_stored_in_order_and_counted_together(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    quota = PostQuota(max_posts=3, max_bytes=9)
    async with uow() as work:
        ids = await work.posts.add_all([NewPost(owner.id, PostText(text)) for text in ("one", "two")], quota)
        await work.commit()

    assert len(ids) == 2
    assert ids[0] < ids[1]
    assert await texts(uow, owner) == ["one", "two"]
    with pytest.raises(PostQuotaExceeded):
        await try_add(uow, owner, "four", quota)
    await try_add(uow, owner, "six", quota)


async def test_posts_added_together_past_the_quota_store_none_of_them(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    await try_add(uow, owner, "kept", PostQuota())

    async with uow() as work:
        with pytest.raises(PostQuotaExceeded):
            await work.posts.add_all(
                [NewPost(owner.id, PostText(text)) for text in ("a", "b", "c")], PostQuota(max_posts=3)
            )

    assert await texts(uow, owner) == ["kept"]
    await try_add(uow, owner, "two more", PostQuota(max_posts=3))
    await try_add(uow, owner, "fit", PostQuota(max_posts=3))


async def test_posts_of_two_owners_are_never_added_together(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    other = await add_user(uow, "other@example.com")

    async with uow() as work:
        with pytest.raises(ValueError, match="one owner"):
            await work.posts.add_all(
                [NewPost(owner.id, PostText("mine")), NewPost(other.id, PostText("theirs"))], PostQuota()
            )
