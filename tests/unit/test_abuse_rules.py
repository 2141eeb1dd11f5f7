"""The abuse rules at the use-case level: login throttling, rate limits, common passwords, post quotas
(in-process counters, the in-memory store, a hasher that counts its work)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from adapters.cache.memory import InProcessPostsCache
from adapters.common_passwords import CommonPasswordList, NoCommonPasswords
from adapters.limits import in_process_limiter
from adapters.memory import InMemoryStore, in_memory_uow_factory
from adapters.tokens import JwtTokenService
from application.limits import LoginLimits, LoginThrottle, Rate, RateLimit, RateLimited
from application.posts import AddPost
from application.sessions import SessionStarter
from application.users import LogIn, PasswordPolicy, RegisterUser
from domain.errors import InvalidCredentials, InvalidPassword, PostQuotaExceeded
from domain.posts import PostQuota
from tests.unit.fakes import FixedClock, PlainHasher

SECRET = "unit-test-secret-that-is-at-least-32-bytes"
HOME = "198.51.100.7"
PASSWORD = "correct horse battery"
LIMITS = LoginLimits(
    account_address=(Rate(5, 900),),
    account=(Rate(20, 3600),),
    address=(Rate(30, 3600),),
)


class World:
    def __init__(
        self,
        login: LoginLimits = LIMITS,
        register: tuple[Rate, ...] = (),
        posts: tuple[Rate, ...] = (),
        quota: PostQuota | None = None,
        common_passwords: bool = True,
    ) -> None:
        self.store = InMemoryStore()
        self.clock = FixedClock(datetime.now(UTC))
        self.hasher = PlainHasher()
        self.limiter = in_process_limiter()
        starter = SessionStarter(JwtTokenService(SECRET, 1800, self.clock), self.clock, 3600)
        uow = in_memory_uow_factory(self.store, self.clock)
        self.throttle = LoginThrottle(self.limiter, login)
        policy = PasswordPolicy(CommonPasswordList() if common_passwords else NoCommonPasswords())
        self.register = RegisterUser(
            uow, self.hasher, starter, self.clock, policy, RateLimit(self.limiter, "register", register)
        )
        self.log_in = LogIn(uow, self.hasher, starter, self.throttle)
        self.add_post = AddPost(
            uow,
            InProcessPostsCache(ttl_seconds=300),
            1_048_576,
            RateLimit(self.limiter, "post", posts),
            quota or PostQuota(),
        )

    @property
    def checks(self) -> int:
        return len(self.hasher.verified_against)

    async def fail(self, email: str, address: str, times: int = 1) -> None:
        for _ in range(times):
            with pytest.raises(InvalidCredentials):
                await self.log_in.execute(email, "wrong password", address)


@pytest.fixture
def world() -> World:
    return World()


async def test_past_the_account_and_address_limit_login_is_429_without_hashing(world: World) -> None:
    await world.register.execute("ann@example.com", PASSWORD, HOME)
    await world.fail("ann@example.com", HOME, times=5)
    checks = world.checks

    with pytest.raises(RateLimited) as refused:
        await world.log_in.execute("ann@example.com", PASSWORD, HOME)

    assert world.checks == checks
    assert 1 <= refused.value.retry_after <= 900
    # Another address is not held back by this address's failures.
    await world.log_in.execute("ann@example.com", PASSWORD, "203.0.113.9")


async def test_unknown_and_existing_accounts_are_throttled_alike(world: World) -> None:
    await world.register.execute("ann@example.com", PASSWORD, HOME)
    answers = []
    for email in ("ann@example.com", "nobody@example.com"):
        await world.fail(email, HOME, times=5)
        with pytest.raises(RateLimited) as refused:
            await world.log_in.execute(email, PASSWORD, HOME)
        answers.append((type(refused.value), str(refused.value)))

    assert answers[0] == answers[1]


async def test_a_success_clears_the_account_and_address_count(world: World) -> None:
    await world.register.execute("ann@example.com", PASSWORD, HOME)
    await world.fail("ann@example.com", HOME, times=4)
    await world.log_in.execute("ann@example.com", PASSWORD, HOME)

    await world.fail("ann@example.com", HOME, times=4)

    await world.log_in.execute("ann@example.com", PASSWORD, HOME)


async def test_an_attacker_failing_from_many_addresses_cannot_lock_the_user_out_of_theirs(
    world: World,
) -> None:
    await world.register.execute("ann@example.com", PASSWORD, HOME)
    await world.log_in.execute("ann@example.com", PASSWORD, HOME)

    for bot in range(10):
        await world.fail("ann@example.com", f"203.0.113.{bot}", times=2)
    # 20 failures: the account's limit now holds back every address it has not logged in from...
    with pytest.raises(RateLimited):
        await world.log_in.execute("ann@example.com", PASSWORD, "192.0.2.200")

    # ...but not the user's own.
    signed_in = await world.log_in.execute("ann@example.com", PASSWORD, HOME)
    assert signed_in.access.value


async def test_failures_from_one_address_across_accounts_reach_the_address_limit(world: World) -> None:
    for account in range(10):
        await world.fail(f"victim{account}@example.com", HOME, times=3)
    checks = world.checks

    with pytest.raises(RateLimited):
        await world.log_in.execute("fresh@example.com", PASSWORD, HOME)
    assert world.checks == checks


async def test_concurrent_guesses_get_no_more_checks_than_the_limit(world: World) -> None:
    await world.register.execute("ann@example.com", PASSWORD, HOME)

    outcomes = await asyncio.gather(
        *(world.log_in.execute("ann@example.com", f"guess {n}", HOME) for n in range(20)),
        return_exceptions=True,
    )

    assert world.checks == 5
    assert sum(isinstance(outcome, RateLimited) for outcome in outcomes) == 15


async def test_login_limits_off_let_every_attempt_through() -> None:
    world = World(login=LoginLimits())

    await world.fail("ann@example.com", HOME, times=50)

    assert world.checks == 50


async def test_a_wrong_password_counted_through_the_throttle_holds_back_logins(world: World) -> None:
    # The password change of issue 10 checks the current password so: its failures are failed logins.
    async def wrong() -> bool:
        return False

    for _ in range(5):
        assert not await world.throttle.attempt("ann@example.com", HOME, wrong)

    with pytest.raises(RateLimited):
        await world.log_in.execute("ann@example.com", PASSWORD, HOME)


async def test_registrations_past_the_address_limit_are_refused_and_store_nothing() -> None:
    world = World(register=(Rate(2, 3600),))
    await world.register.execute("a@example.com", PASSWORD, HOME)
    await world.register.execute("b@example.com", PASSWORD, HOME)

    with pytest.raises(RateLimited):
        await world.register.execute("c@example.com", PASSWORD, HOME)

    assert len(world.store.users) == 2
    await world.register.execute("c@example.com", PASSWORD, "203.0.113.1")


async def test_adding_posts_past_the_user_rate_is_refused() -> None:
    world = World(posts=(Rate(3, 60),))
    first = await world.register.execute("a@example.com", PASSWORD, HOME)
    second = await world.register.execute("b@example.com", PASSWORD, HOME)
    for n in range(3):
        await world.add_post.execute(first.user_id, f"post {n}")

    with pytest.raises(RateLimited):
        await world.add_post.execute(first.user_id, "one too many")
    await world.add_post.execute(second.user_id, "someone else's")


async def test_adding_a_post_past_the_quota_stores_nothing() -> None:
    world = World(quota=PostQuota(max_posts=2))
    user = await world.register.execute("a@example.com", PASSWORD, HOME)
    await world.add_post.execute(user.user_id, "one")
    await world.add_post.execute(user.user_id, "two")

    with pytest.raises(PostQuotaExceeded):
        await world.add_post.execute(user.user_id, "three")

    assert len(world.store.posts_by_owner[user.user_id]) == 2


@pytest.mark.parametrize("password", ["password", "Baseball", "QWERTYUIOP", "iloveyou"])
async def test_registering_with_a_common_password_is_refused_in_any_case(world: World, password: str) -> None:
    with pytest.raises(InvalidPassword, match="common"):
        await world.register.execute("a@example.com", password, HOME)

    assert not world.store.users


async def test_common_passwords_can_be_allowed_for_old_clients() -> None:
    world = World(common_passwords=False)

    await world.register.execute("a@example.com", "password", HOME)


def test_the_common_password_list_holds_at_least_the_3000_most_common() -> None:
    assert len(CommonPasswordList()) == 30_000
    assert "trustno1" in CommonPasswordList()
    assert PASSWORD not in CommonPasswordList()
