"""ResolveCaller: the one place a token becomes a caller, on the in-memory store (counted)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.cache.memory import InProcessConfirmedCallers
from adapters.memory import InMemoryUnitOfWork
from adapters.tokens import JwtTokenService
from application.callers import Caller, ResolveCaller
from domain.errors import NotAuthenticated, StorageUnavailable
from domain.users import Email, NewUser
from tests.unit.fakes import CountingStorage, DownUnitOfWork, FixedClock

SECRET = "test-secret-that-is-at-least-32-bytes-long"
RECHECK_SECONDS = 5.0


class World:
    def __init__(self) -> None:
        self.now = 0.0
        # Tokens are checked against the wall clock.
        self.clock = FixedClock(datetime.now(UTC))
        self.storage = CountingStorage(self.clock)
        self.tokens = JwtTokenService(SECRET, 1800, self.clock)
        self.confirmed = InProcessConfirmedCallers(RECHECK_SECONDS, timer=lambda: self.now)
        self.resolve = ResolveCaller(self.tokens, self.storage, self.confirmed)

    async def user(self, email: str = "caller@example.com") -> int:
        async with InMemoryUnitOfWork(self.storage.store, self.clock) as uow:
            user = await uow.users.add(NewUser(Email.parse(email), "hash", self.clock.now()))
            await uow.commit()
        return user.id

    def remove_behind_the_services_back(self, user_id: int) -> None:
        user = self.storage.store.users.pop(user_id)
        del self.storage.store.user_ids_by_email[user.email]


@pytest.fixture
def world() -> World:
    return World()


async def test_a_token_of_a_stored_user_resolves_to_that_caller(world: World) -> None:
    user_id = await world.user()

    assert await world.resolve.execute(world.tokens.issue(user_id).value) == Caller(user_id)


async def test_a_token_of_a_user_not_in_the_store_is_not_authenticated(world: World) -> None:
    with pytest.raises(NotAuthenticated):
        await world.resolve.execute(world.tokens.issue(12345).value)


async def test_a_forged_token_is_refused_without_asking_the_store(world: World) -> None:
    with pytest.raises(NotAuthenticated):
        await world.resolve.execute("not.a.token")

    assert world.storage.calls.total == 0


async def test_a_caller_confirmed_a_moment_ago_is_resolved_without_the_store(world: World) -> None:
    user_id = await world.user()
    token = world.tokens.issue(user_id).value
    await world.resolve.execute(token)
    lookups = world.storage.calls.total

    for _ in range(3):
        await world.resolve.execute(token)

    assert lookups > 0
    assert world.storage.calls.total == lookups


async def test_a_user_removed_behind_the_services_back_is_refused_once_the_recheck_time_passed(
    world: World,
) -> None:
    user_id = await world.user()
    token = world.tokens.issue(user_id).value
    await world.resolve.execute(token)
    world.remove_behind_the_services_back(user_id)

    world.now += RECHECK_SECONDS + 0.1

    with pytest.raises(NotAuthenticated):
        await world.resolve.execute(token)


async def test_a_never_confirmed_user_removed_behind_the_services_back_is_refused_at_once(
    world: World,
) -> None:
    user_id = await world.user()
    world.remove_behind_the_services_back(user_id)

    with pytest.raises(NotAuthenticated):
        await world.resolve.execute(world.tokens.issue(user_id).value)


async def test_with_storage_down_an_unconfirmed_caller_cannot_be_resolved(world: World) -> None:
    resolve = ResolveCaller(world.tokens, DownUnitOfWork, world.confirmed)

    with pytest.raises(StorageUnavailable):
        await resolve.execute(world.tokens.issue(1).value)
