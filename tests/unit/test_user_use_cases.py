from __future__ import annotations

from datetime import UTC, datetime

import argon2
import attrs
import pytest

from adapters.common_passwords import NoCommonPasswords
from adapters.limits import in_process_limiter
from adapters.memory import InMemoryStore, in_memory_uow_factory
from adapters.passwords import Argon2PasswordHasher
from adapters.tokens import JwtTokenService
from application.limits import LoginLimits, LoginThrottle, RateLimit
from application.ports import Clock, PasswordHasher, TokenService
from application.sessions import SessionStarter
from application.users import LogIn, PasswordPolicy, RegisterUser
from domain.errors import (
    InvalidCredentials,
    InvalidEmail,
    InvalidPassword,
    StorageUnavailable,
    UserAlreadyExists,
)
from domain.ports import UnitOfWorkFactory
from domain.users import Email, NewUser
from tests.unit.fakes import DownUnitOfWork, FixedClock, PlainHasher

SECRET = "unit-test-secret-that-is-at-least-32-bytes"
ADDRESS = "192.0.2.1"
REFRESH_TTL = 3600


def unlimited_register(
    uow: UnitOfWorkFactory, hasher: PasswordHasher, tokens: TokenService, clock: Clock
) -> RegisterUser:
    policy = PasswordPolicy(NoCommonPasswords())
    starter = SessionStarter(tokens, clock, REFRESH_TTL)
    return RegisterUser(uow, hasher, starter, clock, policy, RateLimit(in_process_limiter(), "register", ()))


def unthrottled_log_in(
    uow: UnitOfWorkFactory, hasher: PasswordHasher, tokens: TokenService, clock: Clock
) -> LogIn:
    starter = SessionStarter(tokens, clock, REFRESH_TTL)
    return LogIn(uow, hasher, starter, LoginThrottle(in_process_limiter(), LoginLimits()))


class World:
    """The user use cases wired on the in-memory store and a fake hasher."""

    def __init__(self) -> None:
        self.store = InMemoryStore()
        # pyjwt checks expiry against the real time, so tokens are issued at the real time.
        self.clock = FixedClock(datetime.now(UTC))
        self.hasher = PlainHasher()
        self.tokens = JwtTokenService(SECRET, 1800, self.clock)
        uow = in_memory_uow_factory(self.store, self.clock)
        self.register = unlimited_register(uow, self.hasher, self.tokens, self.clock)
        self.log_in = unthrottled_log_in(uow, self.hasher, self.tokens, self.clock)


@pytest.fixture
def world() -> World:
    return World()


async def test_register_stores_a_normalised_email_and_logs_the_user_in(world: World) -> None:
    registered = await world.register.execute("  Alice@Example.COM ", "correct horse", ADDRESS)

    assert registered.email == "alice@example.com"
    assert registered.signed_in is not None
    access = registered.signed_in.access
    assert world.tokens.verify(access.value).user_id == registered.user_id
    assert access.expires_in == 1800
    assert registered.signed_in.refresh.expires_in == REFRESH_TTL
    stored = world.store.users[registered.user_id]
    assert stored.email == Email.parse("alice@example.com")
    assert stored.created_at == world.clock.now()


async def test_register_keeps_only_a_hash_of_the_password(world: World) -> None:
    registered = await world.register.execute("alice@example.com", "correct horse", ADDRESS)

    assert world.store.users[registered.user_id].password_hash == "plain:correct horse"


async def test_registering_an_email_twice_in_any_case_fails(world: World) -> None:
    await world.register.execute("bob@example.com", "password-1", ADDRESS)

    with pytest.raises(UserAlreadyExists):
        await world.register.execute("BOB@Example.com", "password-2", ADDRESS)
    assert len(world.store.users) == 1


async def test_register_rejects_a_bad_email_or_password_before_hashing(world: World) -> None:
    with pytest.raises(InvalidEmail):
        await world.register.execute("not an email", "password-1", ADDRESS)
    with pytest.raises(InvalidPassword):
        await world.register.execute("carol@example.com", "short", ADDRESS)

    assert world.store.users == {}


async def test_users_get_distinct_ids(world: World) -> None:
    first = await world.register.execute("a@example.com", "password-1", ADDRESS)
    second = await world.register.execute("b@example.com", "password-1", ADDRESS)

    assert first.user_id != second.user_id


async def test_log_in_with_the_right_password_in_any_email_case_gives_a_token(world: World) -> None:
    registered = await world.register.execute("dave@example.com", "open sesame", ADDRESS)

    signed_in = await world.log_in.execute(" DAVE@example.com ", "open sesame", ADDRESS)

    assert world.tokens.verify(signed_in.access.value).user_id == registered.user_id


async def test_log_in_takes_the_password_exactly_as_sent(world: World) -> None:
    await world.register.execute("erin@example.com", "  padded  ", ADDRESS)

    with pytest.raises(InvalidCredentials):
        await world.log_in.execute("erin@example.com", "padded", ADDRESS)
    assert await world.log_in.execute("erin@example.com", "  padded  ", ADDRESS)


async def test_unknown_email_and_wrong_password_fail_alike_after_the_same_hashing_work(
    world: World,
) -> None:
    await world.register.execute("frank@example.com", "the password", ADDRESS)

    with pytest.raises(InvalidCredentials) as unknown:
        await world.log_in.execute("nobody@example.com", "the password", ADDRESS)
    unknown_checks = list(world.hasher.verified_against)
    world.hasher.verified_against.clear()
    with pytest.raises(InvalidCredentials) as wrong:
        await world.log_in.execute("frank@example.com", "not the password", ADDRESS)
    wrong_checks = list(world.hasher.verified_against)

    assert type(unknown.value) is type(wrong.value)
    assert str(unknown.value) == str(wrong.value)
    # One verification each: against no hash (the hasher spends the work on a dummy) and against the
    # user's hash.
    assert unknown_checks == [None]
    assert wrong_checks == ["plain:the password"]


async def test_register_with_storage_down_raises_storage_unavailable() -> None:
    clock = FixedClock()
    tokens = JwtTokenService(SECRET, 1800, clock)
    register = unlimited_register(DownUnitOfWork, PlainHasher(), tokens, clock)

    with pytest.raises(StorageUnavailable):
        await register.execute("gina@example.com", "password-1", ADDRESS)


async def test_log_in_with_storage_down_raises_storage_unavailable() -> None:
    clock = FixedClock()
    log_in = unthrottled_log_in(DownUnitOfWork, PlainHasher(), JwtTokenService(SECRET, 1800, clock), clock)

    with pytest.raises(StorageUnavailable):
        await log_in.execute("gina@example.com", "password-1", ADDRESS)


async def test_a_login_replaces_a_hash_made_with_older_parameters(world: World) -> None:
    registered = await world.register.execute("alice@example.com", "correct horse", ADDRESS)
    world.store.users[registered.user_id] = attrs.evolve(
        world.store.users[registered.user_id], password_hash="old:correct horse"
    )

    signed_in = await world.log_in.execute("alice@example.com", "correct horse", ADDRESS)

    assert world.tokens.verify(signed_in.access.value).user_id == registered.user_id
    assert world.store.users[registered.user_id].password_hash == "plain:correct horse"


async def test_a_failed_login_leaves_an_old_hash_alone(world: World) -> None:
    registered = await world.register.execute("alice@example.com", "correct horse", ADDRESS)
    world.store.users[registered.user_id] = attrs.evolve(
        world.store.users[registered.user_id], password_hash="old:correct horse"
    )

    with pytest.raises(InvalidCredentials):
        await world.log_in.execute("alice@example.com", "wrong horse", ADDRESS)

    assert world.store.users[registered.user_id].password_hash == "old:correct horse"


async def test_a_real_argon2_hash_is_upgraded_to_the_current_parameters_on_login() -> None:
    store = InMemoryStore()
    clock = FixedClock(datetime.now(UTC))
    uow = in_memory_uow_factory(store, clock)
    tokens = JwtTokenService(SECRET, 1800, clock)
    older = Argon2PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1), 1)
    current = Argon2PasswordHasher(argon2.PasswordHasher(time_cost=2, memory_cost=128, parallelism=1), 1)
    try:
        registered = await unlimited_register(uow, older, tokens, clock).execute(
            "alice@example.com", "correct horse", ADDRESS
        )
        log_in = unthrottled_log_in(uow, current, tokens, clock)

        await log_in.execute("alice@example.com", "correct horse", ADDRESS)
        upgraded = store.users[registered.user_id].password_hash
        await log_in.execute("alice@example.com", "correct horse", ADDRESS)

        assert "$m=128,t=2,p=1$" in upgraded
        assert current.needs_rehash(upgraded) is False
        assert store.users[registered.user_id].password_hash == upgraded
    finally:
        older.close()
        current.close()


# An address email-validator refuses today (two dots in a row) that looser rules once let in.
ONCE_VALID = "legacy..dots@example.com"


async def stored_under_older_rules(world: World) -> int:
    async with in_memory_uow_factory(world.store, world.clock)() as uow:
        user = await uow.users.add(NewUser(Email(ONCE_VALID), "plain:correct horse", world.clock.now()))
        await uow.commit()
    return user.id


async def test_an_account_stored_under_an_address_todays_rules_refuse_still_logs_in(world: World) -> None:
    user_id = await stored_under_older_rules(world)

    token = await world.log_in.execute(" Legacy..Dots@Example.com", "correct horse", ADDRESS)

    assert world.tokens.verify(token.access.value).user_id == user_id


async def test_with_an_address_todays_rules_refuse_every_failure_is_the_same_after_the_same_work(
    world: World,
) -> None:
    await stored_under_older_rules(world)

    with pytest.raises(InvalidEmail):
        await world.log_in.execute(ONCE_VALID, "wrong password", ADDRESS)
    with pytest.raises(InvalidEmail):
        await world.log_in.execute("never..stored@example.com", "correct horse", ADDRESS)

    assert world.hasher.verified_against == ["plain:correct horse", None]


async def test_an_address_no_rules_ever_accepted_is_refused_before_any_lookup(world: World) -> None:
    with pytest.raises(InvalidEmail):
        await world.log_in.execute("no-at-sign", "correct horse", ADDRESS)

    assert world.hasher.verified_against == []
