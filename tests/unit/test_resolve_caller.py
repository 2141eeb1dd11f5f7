"""ResolveCaller: the one place a token becomes a caller, on the in-memory store (counted) and the
in-process cache."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import TracebackType

import pytest

from adapters.cache.memory import InProcessPostsCache
from adapters.memory import InMemoryUnitOfWork
from adapters.tokens import JwtTokenService
from application.callers import Caller, ResolveCaller
from domain.errors import NotAuthenticated, StorageUnavailable
from domain.sessions import Session, new_session_id, token_hash
from domain.users import Email, NewUser
from tests.unit.fakes import CountingStorage, CountingUnitOfWork, DownUnitOfWork, FixedClock

SECRET = "test-secret-that-is-at-least-32-bytes-long"
RECHECK_SECONDS = 5.0


class World:
    def __init__(self) -> None:
        # Tokens are checked against the wall clock.
        self.clock = FixedClock(datetime.now(UTC))
        self.storage = CountingStorage(self.clock)
        self.tokens = JwtTokenService(SECRET, 1800, self.clock)
        self.cache = InProcessPostsCache(300)
        self.resolve = ResolveCaller(self.tokens, self.storage, self.cache, self.clock, RECHECK_SECONDS)

    async def caller(self, email: str = "caller@example.com") -> Caller:
        """A stored user in a live session of theirs."""
        now = self.clock.now()
        async with InMemoryUnitOfWork(self.storage.store, self.clock) as uow:
            user = await uow.users.add(NewUser(Email.parse(email), "hash", now))
            session = Session(
                new_session_id(), user.id, now, now, token_hash("r"), 0, now + timedelta(days=1)
            )
            await uow.sessions.add(session)
            await uow.commit()
        return Caller(user.id, session.id)

    def token(self, caller: Caller) -> str:
        return self.tokens.issue(caller.user_id, caller.session_id).value

    def remove_behind_the_services_back(self, user_id: int) -> None:
        user = self.storage.store.users.pop(user_id)
        del self.storage.store.user_ids_by_email[user.email]


@pytest.fixture
def world() -> World:
    return World()


async def test_a_token_of_a_stored_user_in_a_live_session_resolves_to_that_caller(world: World) -> None:
    caller = await world.caller()

    assert await world.resolve.execute(world.token(caller)) == caller


async def test_a_token_of_a_user_not_in_the_store_is_not_authenticated(world: World) -> None:
    with pytest.raises(NotAuthenticated):
        await world.resolve.execute(world.tokens.issue(12345, "no-session").value)


async def test_a_token_of_a_session_the_store_does_not_have_is_not_authenticated(world: World) -> None:
    caller = await world.caller()

    with pytest.raises(NotAuthenticated):
        await world.resolve.execute(world.tokens.issue(caller.user_id, "someone-elses").value)


async def test_a_forged_token_is_refused_without_asking_the_store(world: World) -> None:
    with pytest.raises(NotAuthenticated):
        await world.resolve.execute("not.a.token")

    assert world.storage.calls.total == 0


async def test_a_caller_confirmed_a_moment_ago_is_resolved_without_the_store(world: World) -> None:
    token = world.token(await world.caller())
    await world.resolve.execute(token)
    lookups = world.storage.calls.total

    for _ in range(3):
        await world.resolve.execute(token)

    assert lookups > 0
    assert world.storage.calls.total == lookups


async def test_a_user_removed_behind_the_services_back_is_refused_once_the_recheck_time_passed(
    world: World,
) -> None:
    caller = await world.caller()
    token = world.token(caller)
    await world.resolve.execute(token)
    world.remove_behind_the_services_back(caller.user_id)

    world.clock.advance(RECHECK_SECONDS + 0.1)

    with pytest.raises(NotAuthenticated):
        await world.resolve.execute(token)


async def test_a_never_confirmed_user_removed_behind_the_services_back_is_refused_at_once(
    world: World,
) -> None:
    caller = await world.caller()
    world.remove_behind_the_services_back(caller.user_id)

    with pytest.raises(NotAuthenticated):
        await world.resolve.execute(world.token(caller))


async def test_with_storage_down_an_unconfirmed_caller_cannot_be_resolved(world: World) -> None:
    resolve = ResolveCaller(world.tokens, DownUnitOfWork, world.cache, world.clock, RECHECK_SECONDS)

    with pytest.raises(StorageUnavailable):
        await resolve.execute(world.tokens.issue(1, "a-session").value)


async def test_once_the_recheck_time_passed_one_store_lookup_vouches_for_the_session_again(
    world: World,
) -> None:
    token = world.token(await world.caller())
    await world.resolve.execute(token)
    world.clock.advance(RECHECK_SECONDS + 0.1)

    await world.resolve.execute(token)
    lookups = world.storage.calls.total
    for _ in range(3):
        await world.resolve.execute(token)

    assert world.storage.calls.total == lookups


class HeldStorage(CountingStorage):
    """Its units of work have read what they read, then wait for `release` before they end;
    `holding` is set once one does."""

    def __init__(self, clock: FixedClock) -> None:
        super().__init__(clock)
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    def __call__(self) -> CountingUnitOfWork:
        storage = self

        class Held(CountingUnitOfWork):
            async def __aexit__(
                self,
                exc_type: type[BaseException] | None,
                exc: BaseException | None,
                tb: TracebackType | None,
            ) -> None:
                storage.holding.set()
                await storage.release.wait()
                await super().__aexit__(exc_type, exc, tb)

        return Held(self.store, self.calls, self.clock)


def held_world() -> tuple[World, HeldStorage]:
    world = World()
    held = HeldStorage(world.clock)
    world.storage = held
    world.resolve = ResolveCaller(world.tokens, held, world.cache, world.clock, RECHECK_SECONDS)
    return world, held


async def test_requests_of_one_session_that_find_no_vouch_at_once_share_one_store_lookup() -> None:
    world, held = held_world()
    caller = await world.caller()
    token = world.token(caller)
    before = held.calls.uows_opened

    resolving = [asyncio.ensure_future(world.resolve.execute(token)) for _ in range(50)]
    await held.holding.wait()
    held.release.set()

    assert await asyncio.gather(*resolving) == [caller] * 50
    assert held.calls.uows_opened - before == 1


async def test_a_lookup_begun_before_the_session_ended_is_not_shared_with_a_request_after() -> None:
    world, held = held_world()
    caller = await world.caller()
    token = world.token(caller)
    early = asyncio.ensure_future(world.resolve.execute(token))
    await held.holding.wait()

    async with InMemoryUnitOfWork(held.store, world.clock) as uow:
        await uow.sessions.end(caller.user_id, caller.session_id, world.clock.now())
        await uow.commit()
    await world.cache.invalidate(caller.user_id)
    held.release.set()

    with pytest.raises(NotAuthenticated):
        await world.resolve.execute(token)
    # The early request read the store before the session ended.
    assert await early == caller
