"""The session repository's contract, held by every backend: memory://, SQLite and MySQL/MariaDB."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from domain.ports import UnitOfWorkFactory
from domain.sessions import Session, new_session_id, token_hash
from domain.users import User
from tests.contract.test_unit_of_work import NOW, add_post, add_user

LATER = NOW + timedelta(days=14)


async def start(uow: UnitOfWorkFactory, user: User, at: timedelta = timedelta()) -> Session:
    session = Session(new_session_id(), user.id, NOW + at, NOW + at, token_hash("first"), 0, LATER)
    async with uow() as work:
        await work.sessions.add(session)
        await work.commit()
    return session


async def get(uow: UnitOfWorkFactory, session: Session) -> Session | None:
    async with uow() as work:
        return await work.sessions.get(session.user_id, session.id)


async def test_a_started_session_is_found_by_its_user_only(uow: UnitOfWorkFactory) -> None:
    alice = await add_user(uow, "alice@example.com")
    bob = await add_user(uow, "bob@example.com")
    session = await start(uow, alice)

    assert await get(uow, session) == session
    async with uow() as work:
        assert await work.sessions.get(bob.id, session.id) is None
        assert await work.sessions.get(alice.id, "no-such-session") is None


async def test_live_sessions_are_listed_most_recently_used_first(uow: UnitOfWorkFactory) -> None:
    user = await add_user(uow)
    old = await start(uow, user)
    new = await start(uow, user, timedelta(seconds=1))
    ended = await start(uow, user, timedelta(seconds=2))
    async with uow() as work:
        assert await work.sessions.end(user.id, ended.id, NOW) is True
        await work.commit()

    async with uow() as work:
        assert [s.id for s in await work.sessions.list_alive(user.id, NOW)] == [new.id, old.id]
        assert await work.sessions.rotate(user.id, old.id, 0, token_hash("second"), LATER, NOW + timedelta(1))
        await work.commit()
    async with uow() as work:
        assert [s.id for s in await work.sessions.list_alive(user.id, NOW)] == [old.id, new.id]
        assert await work.sessions.list_alive(user.id, LATER + timedelta(days=1)) == []


async def test_a_rotation_moves_to_the_next_generation_only_from_the_current_one(
    uow: UnitOfWorkFactory,
) -> None:
    user = await add_user(uow)
    session = await start(uow, user)
    used_at = NOW + timedelta(minutes=5)

    async with uow() as work:
        assert await work.sessions.rotate(user.id, session.id, 0, token_hash("second"), LATER, used_at)
        assert not await work.sessions.rotate(user.id, session.id, 0, token_hash("fork"), LATER, used_at)
        await work.commit()

    rotated = await get(uow, session)
    assert rotated is not None
    assert (rotated.refresh_generation, rotated.refresh_hash) == (1, token_hash("second"))
    assert rotated.last_used_at == used_at
    assert rotated.created_at == session.created_at


async def test_of_concurrent_rotations_from_one_generation_exactly_one_wins(uow: UnitOfWorkFactory) -> None:
    user = await add_user(uow)
    session = await start(uow, user)

    async def rotate(name: str) -> bool:
        async with uow() as work:
            won = await work.sessions.rotate(user.id, session.id, 0, token_hash(name), LATER, NOW)
            await work.commit()
        return won

    results = await asyncio.gather(*(rotate(f"successor {n}") for n in range(4)))

    assert sorted(results) == [False, False, False, True]
    stored = await get(uow, session)
    assert stored is not None
    assert stored.refresh_generation == 1


async def test_an_ended_or_expired_session_cannot_rotate(uow: UnitOfWorkFactory) -> None:
    user = await add_user(uow)
    ended, expired = await start(uow, user), await start(uow, user)
    async with uow() as work:
        assert await work.sessions.end(user.id, ended.id, NOW)
        assert not await work.sessions.end(user.id, ended.id, NOW)
        assert not await work.sessions.rotate(user.id, ended.id, 0, token_hash("x"), LATER, NOW)
        assert not await work.sessions.rotate(user.id, expired.id, 0, token_hash("x"), LATER, LATER)


async def test_ending_all_sessions_can_keep_one_and_leaves_other_users_alone(uow: UnitOfWorkFactory) -> None:
    alice = await add_user(uow, "alice@example.com")
    bob = await add_user(uow, "bob@example.com")
    kept, gone = await start(uow, alice), await start(uow, alice)
    bobs = await start(uow, bob)

    async with uow() as work:
        await work.sessions.end_all(alice.id, NOW, keep=kept.id)
        await work.commit()

    assert [s.id for s in await _alive(uow, alice)] == [kept.id]
    ended = await get(uow, gone)
    assert ended is not None
    assert ended.ended_at == NOW
    async with uow() as work:
        await work.sessions.end_all(alice.id, NOW)
        await work.commit()
    assert await _alive(uow, alice) == []
    assert [s.id for s in await _alive(uow, bob)] == [bobs.id]


async def _alive(uow: UnitOfWorkFactory, user: User) -> list[Session]:
    async with uow() as work:
        return list(await work.sessions.list_alive(user.id, NOW))


@pytest.mark.parametrize("commit", [True, False])
async def test_a_user_goes_with_posts_and_sessions_in_one_transaction(
    uow: UnitOfWorkFactory, commit: bool
) -> None:
    user = await add_user(uow, "leaving@example.com")
    other = await add_user(uow, "staying@example.com")
    await add_post(uow, user, "mine")
    await add_post(uow, other, "theirs")
    session = await start(uow, user)

    async with uow() as work:
        await work.posts.delete_all_of(user.id)
        await work.sessions.delete_all_of(user.id)
        assert await work.users.delete(user.id) is True
        if commit:
            await work.commit()

    async with uow() as work:
        found = await work.users.get(user.id)
        posts = await work.posts.list_by_owner(user.id)
        theirs = await work.posts.list_by_owner(other.id)
    assert [post.text.value for post in theirs] == ["theirs"]
    if commit:
        assert (found, posts, await get(uow, session)) == (None, [], None)
        await add_user(uow, "leaving@example.com")
    else:
        assert found == user
        assert [post.text.value for post in posts] == ["mine"]
        assert await get(uow, session) == session


async def test_a_password_hash_is_replaced(uow: UnitOfWorkFactory) -> None:
    user = await add_user(uow)
    async with uow() as work:
        await work.users.set_password_hash(user.id, "new-hash")
        await work.commit()
    async with uow() as work:
        stored = await work.users.get(user.id)
    assert stored is not None
    assert stored.password_hash == "new-hash"
