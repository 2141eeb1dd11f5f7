"""The session use cases on the in-memory store and cache, with a clock the tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.cache.memory import InProcessPostsCache
from adapters.common_passwords import NoCommonPasswords
from adapters.limits import in_process_limiter
from adapters.memory import InMemoryStore
from adapters.tokens import JwtTokenService
from application.callers import Caller, ResolveCaller
from application.limits import LoginLimits, LoginThrottle, Rate, RateLimit, RateLimited
from application.sessions import EndSession, RefreshSession, SessionStarter, SignedIn
from application.users import ChangePassword, DeleteAccount, LogIn, PasswordPolicy, RegisterUser
from domain.errors import InvalidRefreshToken, NotAuthenticated, WrongPassword
from tests.unit.fakes import CountingStorage, DownCache, FixedClock, PlainHasher

SECRET = "unit-test-secret-that-is-at-least-32-bytes"
REFRESH_TTL = 3600
RECHECK_SECONDS = 5.0
ADDRESS = "192.0.2.1"


class World:
    def __init__(self, cache: InProcessPostsCache | None = None, limits: LoginLimits | None = None) -> None:
        # pyjwt checks expiry against the real time, so tokens are issued at the real time.
        self.clock = FixedClock(datetime.now(UTC))
        self.storage = CountingStorage(self.clock)
        self.store: InMemoryStore = self.storage.store
        self.cache = cache if cache is not None else InProcessPostsCache(300)
        hasher = PlainHasher()
        tokens = JwtTokenService(SECRET, 1800, self.clock)
        starter = SessionStarter(tokens, self.clock, REFRESH_TTL)
        uow = self.storage
        policy = PasswordPolicy(NoCommonPasswords())
        limiter = in_process_limiter()
        throttle = LoginThrottle(limiter, limits or LoginLimits())
        self.register = RegisterUser(
            uow, hasher, starter, self.clock, policy, RateLimit(limiter, "register", ())
        )
        self.log_in = LogIn(uow, hasher, starter, throttle)
        self.refresh_session = RefreshSession(uow, starter, self.cache, RateLimit(limiter, "refresh", ()))
        self.resolve = ResolveCaller(tokens, uow, self.cache, self.clock, RECHECK_SECONDS)
        self.end = EndSession(uow, self.cache, self.clock)
        self.change_password = ChangePassword(uow, hasher, self.cache, self.clock, policy, throttle)
        self.delete_account = DeleteAccount(uow, hasher, self.cache, throttle)

    async def refresh(self, token: str) -> SignedIn:
        return await self.refresh_session.execute(token, ADDRESS)

    async def authenticate(self, token: str) -> Caller:
        return await self.resolve.execute(token)

    async def signed_up(self, email: str = "alice@example.com") -> SignedIn:
        registered = await self.register.execute(email, "correct horse", ADDRESS)
        assert registered.signed_in is not None
        return registered.signed_in


@pytest.fixture
def world() -> World:
    return World()


async def test_a_session_seen_alive_is_vouched_for_by_the_cache_without_the_store(world: World) -> None:
    session = await world.signed_up()
    await world.authenticate(session.access.value)
    before = world.storage.calls.uows_opened

    for _ in range(3):
        assert (await world.authenticate(session.access.value)) == session.caller

    assert world.storage.calls.uows_opened == before


async def test_an_ended_session_is_refused_although_its_token_was_verified_and_cached(world: World) -> None:
    session = await world.signed_up()
    await world.authenticate(session.access.value)

    await world.end.execute(session.caller, session.caller.session_id)

    with pytest.raises(NotAuthenticated):
        await world.authenticate(session.access.value)


async def test_a_cache_that_lost_its_entries_asks_the_store_and_never_revives_a_session(world: World) -> None:
    session = await world.signed_up()
    await world.end.execute(session.caller, session.caller.session_id)
    world.resolve._cache = InProcessPostsCache(300)  # as after a restart: empty

    with pytest.raises(NotAuthenticated):
        await world.authenticate(session.access.value)


async def test_with_the_cache_down_the_store_decides_every_time() -> None:
    world = World(DownCache())
    session = await world.signed_up()
    assert (await world.authenticate(session.access.value)) == session.caller

    await world.end.execute(session.caller, session.caller.session_id)

    with pytest.raises(NotAuthenticated):
        await world.authenticate(session.access.value)


async def test_a_session_past_its_refresh_expiry_is_refused_even_when_cached(world: World) -> None:
    session = await world.signed_up()
    await world.authenticate(session.access.value)

    world.clock.advance(REFRESH_TTL + 1)

    with pytest.raises(NotAuthenticated):
        await world.authenticate(session.access.value)
    with pytest.raises(InvalidRefreshToken):
        await world.refresh(session.refresh.value)


async def test_a_refresh_rotates_and_moves_the_expiry(world: World) -> None:
    session = await world.signed_up()
    world.clock.advance(REFRESH_TTL - 10)

    refreshed = await world.refresh(session.refresh.value)
    world.clock.advance(20)

    assert refreshed.caller == session.caller
    stored = world.store.sessions_by_user[session.caller.user_id][session.caller.session_id]
    assert (stored.refresh_generation, stored.last_used_at) == (1, world.clock.now() - timedelta(seconds=20))
    # The old expiry has passed; the session lives on from its refresh.
    assert stored.alive_at(world.clock.now())


async def test_reuse_of_an_older_generation_ends_the_session_and_its_successor(world: World) -> None:
    session = await world.signed_up()
    second = await world.refresh(session.refresh.value)
    third = await world.refresh(second.refresh.value)

    with pytest.raises(InvalidRefreshToken):
        await world.refresh(session.refresh.value)

    with pytest.raises(InvalidRefreshToken):
        await world.refresh(third.refresh.value)
    with pytest.raises(NotAuthenticated):
        await world.authenticate(third.access.value)


async def test_a_password_change_keeps_the_current_session_and_ends_the_others(world: World) -> None:
    current = await world.signed_up()
    other = await world.log_in.execute("alice@example.com", "correct horse", ADDRESS)

    with pytest.raises(WrongPassword):
        await world.change_password.execute(current.caller, "not the password", "a new password", ADDRESS)
    await world.change_password.execute(current.caller, "correct horse", "a new password", ADDRESS)

    await world.authenticate(current.access.value)
    with pytest.raises(NotAuthenticated):
        await world.authenticate(other.access.value)


async def test_deleting_an_account_ends_its_sessions_and_frees_its_email(world: World) -> None:
    session = await world.signed_up()

    with pytest.raises(WrongPassword):
        await world.delete_account.execute(session.caller, "not the password", ADDRESS)
    await world.delete_account.execute(session.caller, "correct horse", ADDRESS)

    with pytest.raises(NotAuthenticated):
        await world.authenticate(session.access.value)
    again = await world.signed_up()
    assert again.caller.user_id != session.caller.user_id
    assert session.caller.user_id not in world.store.sessions_by_user


async def test_wrong_current_passwords_count_as_failed_logins() -> None:
    world = World(limits=LoginLimits(account_address=(Rate(2, 900),)))
    session = await world.signed_up()
    for _ in range(2):
        with pytest.raises(WrongPassword):
            await world.change_password.execute(session.caller, "not the password", "a new password", ADDRESS)

    with pytest.raises(RateLimited):
        await world.log_in.execute("alice@example.com", "correct horse", ADDRESS)
    with pytest.raises(RateLimited):
        await world.delete_account.execute(session.caller, "correct horse", ADDRESS)
