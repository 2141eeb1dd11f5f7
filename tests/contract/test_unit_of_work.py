"""The storage contract, held by every backend: memory://, SQLite and MySQL/MariaDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import NotAuthenticated, UserAlreadyExists
from domain.ports import MAX_ID, UnitOfWorkFactory
from domain.posts import NewPost, PostQuota, PostText
from domain.users import Email, NewUser, User

NOW = datetime(2026, 11, 20, 22, 21, 0, 123456, tzinfo=UTC)
ONE_MIB_OF_EMOJI = "😀" * (1_048_576 // 4)
ADDERS = 16


async def add_user(uow: UnitOfWorkFactory, email: str = "alice@example.com") -> User:
    async with uow() as work:
        user = await work.users.add(NewUser(Email.parse(email), "argon2-hash", NOW))
        await work.commit()
    return user


async def add_post(uow: UnitOfWorkFactory, owner: User, text: str) -> int:
    async with uow() as work:
        (post_id,) = await work.posts.add_all([NewPost(owner.id, PostText(text))], PostQuota())
        await work.commit()
    return post_id


async def test_a_committed_user_is_found_by_id_and_by_email(uow: UnitOfWorkFactory) -> None:
    user = await add_user(uow, "Alice@Example.com")
    async with uow() as work:
        by_id = await work.users.get(user.id)
        by_email = await work.users.by_email(Email.parse("ALICE@example.com"))
    assert by_id == by_email == user
    assert user.email.value == "alice@example.com"
    assert user.created_at == NOW


async def test_work_not_committed_is_rolled_back(uow: UnitOfWorkFactory) -> None:
    async with uow() as work:
        user = await work.users.add(NewUser(Email.parse("ghost@example.com"), "hash", NOW))
    async with uow() as work:
        assert await work.users.get(user.id) is None
        assert await work.users.by_email(Email.parse("ghost@example.com")) is None


async def test_an_email_registered_twice_is_refused_in_any_case(uow: UnitOfWorkFactory) -> None:
    await add_user(uow, "bob@example.com")
    async with uow() as work:
        with pytest.raises(UserAlreadyExists):
            await work.users.add(NewUser(Email.parse("BOB@example.com"), "other", NOW))


async def test_emails_differing_only_in_an_accent_are_two_accounts(uow: UnitOfWorkFactory) -> None:
    accented = await add_user(uow, "josé@example.com")
    plain = await add_user(uow, "jose@example.com")
    assert accented.id != plain.id
    async with uow() as work:
        found = await work.users.by_email(Email.parse("josé@example.com"))
    assert found is not None
    assert found.id == accented.id


async def test_posts_are_listed_oldest_first_and_only_to_their_owner(uow: UnitOfWorkFactory) -> None:
    alice = await add_user(uow, "alice@example.com")
    bob = await add_user(uow, "bob@example.com")
    before = datetime.now(UTC)
    first = await add_post(uow, alice, "first")
    await add_post(uow, bob, "bob's")
    second = await add_post(uow, alice, "second")
    after = datetime.now(UTC)
    async with uow() as work:
        listed = await work.posts.list_by_owner(alice.id)
    assert [(post.id, post.text.value) for post in listed] == [(first, "first"), (second, "second")]
    # The store's clock (MySQL's own, on this machine) stamps them: UTC, and when they were added.
    slack = timedelta(seconds=1)
    assert before - slack <= listed[0].created_at <= listed[1].created_at <= after + slack
    assert all(post.owner_id == alice.id for post in listed)


async def test_concurrent_adds_of_one_owner_carry_times_in_commit_order(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    committed: list[int] = []

    async def add(number: int) -> None:
        async with uow() as work:
            new = NewPost(owner.id, PostText(f"post {number}"))
            (post_id,) = await work.posts.add_all([new], PostQuota())
            # The first to start lingers longest before committing: times taken when a write starts
            # would come out in the opposite order to the commits.
            await asyncio.sleep((ADDERS - number) * 0.002)
            await work.commit()
            committed.append(post_id)

    await asyncio.gather(*(add(number) for number in range(ADDERS)))
    async with uow() as work:
        listed = await work.posts.list_by_owner(owner.id)
    # One owner's adds hold their place (the owner's row; SQLite: the writer lock) from the insert
    # to the commit, so ids are given in commit order. The order the commits return in is not
    # always that order: MySQL answers the commits of one group commit (one flush of its log)
    # together, in either order.
    assert [post.id for post in listed] == sorted(committed)
    times = [post.created_at for post in listed]
    assert times == sorted(times)


async def test_a_one_mebibyte_emoji_text_round_trips_byte_identical(uow: UnitOfWorkFactory) -> None:
    assert len(ONE_MIB_OF_EMOJI.encode()) == PostText.DEFAULT_MAX_BYTES
    owner = await add_user(uow)
    await add_post(uow, owner, ONE_MIB_OF_EMOJI)
    async with uow() as work:
        (post,) = await work.posts.list_by_owner(owner.id)
    assert post.text.value.encode() == ONE_MIB_OF_EMOJI.encode()


async def test_delete_removes_only_the_owners_post(uow: UnitOfWorkFactory) -> None:
    alice = await add_user(uow, "alice@example.com")
    mallory = await add_user(uow, "mallory@example.com")
    post_id = await add_post(uow, alice, "mine")
    async with uow() as work:
        assert await work.posts.delete(post_id, mallory.id) is False
        await work.commit()
    async with uow() as work:
        assert [post.id for post in await work.posts.list_by_owner(alice.id)] == [post_id]
        assert await work.posts.delete(post_id, alice.id) is True
        await work.commit()
    async with uow() as work:
        assert await work.posts.list_by_owner(alice.id) == []
        assert await work.posts.delete(post_id, alice.id) is False


async def test_a_delete_not_committed_is_rolled_back(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    post_id = await add_post(uow, owner, "keep me")
    async with uow() as work:
        assert await work.posts.delete(post_id, owner.id) is True
    async with uow() as work:
        assert [post.id for post in await work.posts.list_by_owner(owner.id)] == [post_id]


async def test_ids_of_deleted_posts_are_not_handed_out_again(uow: UnitOfWorkFactory) -> None:
    owner = await add_user(uow)
    first = await add_post(uow, owner, "one")
    async with uow() as work:
        await work.posts.delete(first, owner.id)
        await work.commit()
    assert await add_post(uow, owner, "two") > first


async def test_a_post_for_a_user_who_does_not_exist_is_refused(uow: UnitOfWorkFactory) -> None:
    async with uow() as work:
        with pytest.raises(NotAuthenticated):
            await work.posts.add_all([NewPost(MAX_ID, PostText("orphan"))], PostQuota())


async def test_the_largest_id_names_nothing(uow: UnitOfWorkFactory) -> None:
    await add_user(uow)
    async with uow() as work:
        assert await work.users.get(MAX_ID) is None
        assert await work.posts.list_by_owner(MAX_ID) == []
        assert await work.posts.delete(MAX_ID, MAX_ID) is False


async def test_a_password_hash_is_upgraded_only_from_the_hash_it_replaces(uow: UnitOfWorkFactory) -> None:
    user = await add_user(uow)
    async with uow() as work:
        await work.users.upgrade_password_hash(user.id, "argon2-hash", "argon2-hash-v2")
        await work.commit()
    async with uow() as work:
        await work.users.upgrade_password_hash(user.id, "argon2-hash", "stale-upgrade")
        await work.commit()
    async with uow() as work:
        stored = await work.users.get(user.id)
    assert stored is not None
    assert stored.password_hash == "argon2-hash-v2"


async def test_an_upgrade_not_committed_is_rolled_back(uow: UnitOfWorkFactory) -> None:
    user = await add_user(uow)
    async with uow() as work:
        await work.users.upgrade_password_hash(user.id, "argon2-hash", "argon2-hash-v2")
    async with uow() as work:
        stored = await work.users.get(user.id)
    assert stored is not None
    assert stored.password_hash == "argon2-hash"
