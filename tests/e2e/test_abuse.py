"""Abuse protection over HTTP (contract section 6): login throttling, rate limits, quotas, common
passwords and the client address, through both APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from starlette.applications import Starlette

from application.limits import RateLimiter, Rates, Room
from entrypoints.container import Container, close
from entrypoints.http.app import create_app
from tests.e2e.helpers import (
    ADD_POST,
    GET_POSTS,
    LOGIN,
    PASSWORD,
    REGISTER,
    Account,
    assert_detail,
    assert_validation_error,
    register,
    unique_email,
)

DEFAULT_LOGIN_LIMITS = "account_address: 5/15 minutes; account: 50/hour; address: 100/hour"


class Service:
    """One app, reached from as many client addresses as a test needs."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.app: Starlette = create_app(container)

    def client(self, peer: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(peer, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://hexpost.test")


@pytest.fixture
async def service_with(make_container: Callable[..., Container]) -> AsyncIterator[Callable[..., Service]]:
    made: list[Service] = []

    def make(**settings: Any) -> Service:
        made.append(Service(make_container(**settings)))
        return made[-1]

    yield make
    for service in made:
        await close(service.container)


async def wrong_login(
    client: httpx.AsyncClient, email: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": "wrong password"}, headers=headers)


async def login(
    client: httpx.AsyncClient, email: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": PASSWORD}, headers=headers)


def assert_throttled(answer: httpx.Response) -> None:
    assert_detail(answer, 429)
    assert int(answer.headers["retry-after"]) >= 1


async def test_past_five_failures_login_is_429_with_retry_after_and_the_same_for_unknown_accounts(
    service_with: Callable[..., Service],
) -> None:
    async with service_with(login_limits=DEFAULT_LOGIN_LIMITS).client() as client:
        account = await register(client)
        answers = []
        for email in (account.email, unique_email()):
            for _ in range(5):
                assert_detail(await wrong_login(client, email), 404, "Invalid email or password")
            answers.append(await login(client, email))

    for answer in answers:
        assert_throttled(answer)
    known, unknown = answers
    assert known.json() == unknown.json()
    assert known.headers["retry-after"] == unknown.headers["retry-after"]
    assert known.headers.keys() == unknown.headers.keys()


async def test_a_successful_login_clears_the_failures_of_its_address(
    service_with: Callable[..., Service],
) -> None:
    async with service_with(login_limits=DEFAULT_LOGIN_LIMITS).client() as client:
        account = await register(client)
        for _ in range(2):
            for _ in range(4):
                await wrong_login(client, account.email)
            assert (await login(client, account.email)).status_code == 200


async def test_the_users_own_address_still_logs_in_while_others_hammer_the_account(
    service_with: Callable[..., Service],
) -> None:
    service = service_with(login_limits="account_address: 5/15 minutes; account: 10/hour; address: 100/hour")
    async with service.client("198.51.100.7") as home:
        account = await register(home)
        assert (await login(home, account.email)).status_code == 200
        for bot in range(6):
            async with service.client(f"203.0.113.{bot}") as attacker:
                for _ in range(2):
                    assert (await wrong_login(attacker, account.email)).status_code in (404, 429)
        async with service.client("192.0.2.99") as elsewhere:
            assert_throttled(await login(elsewhere, account.email))

        assert (await login(home, account.email)).status_code == 200


async def test_failures_from_one_address_over_many_accounts_reach_its_limit(
    service_with: Callable[..., Service],
) -> None:
    service = service_with(login_limits="account_address: off; account: off; address: 10/hour")
    async with service.client() as client:
        for _ in range(10):
            await wrong_login(client, unique_email())
        assert_throttled(await wrong_login(client, unique_email()))
        async with service.client("192.0.2.1") as other:
            assert_detail(await wrong_login(other, unique_email()), 404)


async def test_the_compatibility_login_is_throttled_in_its_own_wire_format(
    service_with: Callable[..., Service],
) -> None:
    async with service_with(login_limits=DEFAULT_LOGIN_LIMITS).client() as client:
        form = {"username": unique_email(), "password": "wrong password"}
        for _ in range(5):
            assert_detail(await client.post("/auth/login", data=form), 400, "LOGIN_BAD_CREDENTIALS")

        assert_throttled(await client.post("/auth/login", data=form))


async def test_a_spoofed_x_forwarded_for_changes_nothing_unless_the_peer_is_a_trusted_proxy(
    service_with: Callable[..., Service],
) -> None:
    limits = "account_address: 3/15 minutes"
    email = unique_email()
    async with service_with(login_limits=limits).client("198.51.100.7") as direct:
        for n in range(3):
            await wrong_login(direct, email, {"X-Forwarded-For": f"192.0.2.{n}"})
        assert_throttled(await wrong_login(direct, email, {"X-Forwarded-For": "192.0.2.200"}))

    proxied = service_with(login_limits=limits, forwarded_allow_ips="10.0.0.5")
    async with proxied.client("10.0.0.5") as proxy:
        for _ in range(3):
            await wrong_login(proxy, email, {"X-Forwarded-For": "192.0.2.1"})
        assert_throttled(await wrong_login(proxy, email, {"X-Forwarded-For": "192.0.2.1"}))
        # Another client behind the same proxy is another address.
        assert_detail(await wrong_login(proxy, email, {"X-Forwarded-For": "192.0.2.2"}), 404)
    async with proxied.client("198.51.100.8") as untrusted:
        for _ in range(3):
            await wrong_login(untrusted, email, {"X-Forwarded-For": "192.0.2.3"})
        # The untrusted peer's header was ignored: 192.0.2.3 itself has no failures.
        async with proxied.client("10.0.0.5") as proxy:
            assert_detail(await wrong_login(proxy, email, {"X-Forwarded-For": "192.0.2.3"}), 404)


async def test_registrations_past_the_address_limit_are_429_in_both_apis(
    service_with: Callable[..., Service],
) -> None:
    service = service_with(register_limits="3/hour")
    async with service.client() as client:
        for _ in range(2):
            await register(client)
        answer = await client.post("/auth/register", json={"email": unique_email(), "password": PASSWORD})
        assert answer.status_code == 201
        email = unique_email()
        assert_throttled(await client.post(REGISTER, json={"email": email, "password": PASSWORD}))
        assert_throttled(await client.post("/auth/register", json={"email": email, "password": PASSWORD}))
        assert_detail(await login(client, email), 404)
        async with service.client("192.0.2.1") as other:
            await register(other, email)


async def test_adding_posts_past_the_users_rate_is_429(service_with: Callable[..., Service]) -> None:
    async with service_with(post_limits="2/minute").client() as client:
        account = await register(client)
        other = await register(client)
        for n in range(2):
            answer = await client.post(ADD_POST, json={"text": f"post {n}"}, headers=account.auth)
            assert answer.status_code == 200

        assert_throttled(await client.post(ADD_POST, json={"text": "more"}, headers=account.auth))
        assert (await client.post(ADD_POST, json={"text": "mine"}, headers=other.auth)).status_code == 200


async def post_texts(client: httpx.AsyncClient, account: Account) -> list[str]:
    answer = await client.get(GET_POSTS, headers=account.auth)
    return [post["text"] for post in answer.json()]


async def test_an_add_post_past_a_quota_is_403_and_stores_nothing(
    service_with: Callable[..., Service],
) -> None:
    async with service_with(max_posts_per_user=2, max_bytes_per_user=10).client() as client:
        account = await register(client)
        assert (await client.post(ADD_POST, json={"text": "123456"}, headers=account.auth)).status_code == 200

        too_big = await client.post(ADD_POST, json={"text": "12345"}, headers=account.auth)
        assert_detail(too_big, 403, "Post quota exceeded")
        assert (await client.post(ADD_POST, json={"text": "1234"}, headers=account.auth)).status_code == 200
        too_many = await client.post(ADD_POST, json={"text": "x"}, headers=account.auth)
        assert_detail(too_many, 403, "Post quota exceeded")
        compat = await client.post("/posts/AddPost", params={"token": account.token}, json={"Post_Text": "x"})
        assert_detail(compat, 403, "Post quota exceeded")

        assert await post_texts(client, account) == ["123456", "1234"]


async def test_quotas_switched_off_hold_nothing_back(service_with: Callable[..., Service]) -> None:
    async with service_with(max_posts_per_user="off", max_bytes_per_user="off").client() as client:
        account = await register(client)
        for n in range(3):
            assert (
                await client.post(ADD_POST, json={"text": f"{n}"}, headers=account.auth)
            ).status_code == 200


@pytest.mark.parametrize("route", [REGISTER, "/auth/register"])
async def test_a_common_password_is_refused_at_body_password(
    service_with: Callable[..., Service], route: str
) -> None:
    async with service_with().client() as client:
        answer = await client.post(route, json={"email": unique_email(), "password": "SunShine"})

    assert_validation_error(answer, ["body", "password"])
    assert "common" in answer.json()["detail"][0]["msg"]


async def test_common_passwords_are_accepted_when_switched_off(service_with: Callable[..., Service]) -> None:
    async with service_with(refuse_common_passwords=False).client() as client:
        answer = await client.post(REGISTER, json={"email": unique_email(), "password": "sunshine"})

    assert answer.status_code == 201


class CountingLimiter(RateLimiter):
    def __init__(self, inner: RateLimiter) -> None:
        self.inner = inner
        self.calls = 0

    async def hit(self, kind: str, rates: Rates, key: str) -> float | None:
        self.calls += 1
        return await self.inner.hit(kind, rates, key)

    async def room(self, kind: str, rates: Rates, key: str) -> Room:
        self.calls += 1
        return await self.inner.room(kind, rates, key)

    async def clear(self, kind: str, rates: Rates, key: str) -> None:
        self.calls += 1
        await self.inner.clear(kind, rates, key)


async def test_get_posts_never_touches_the_rate_limiter(make_container: Callable[..., Container]) -> None:
    container = make_container(
        login_limits=DEFAULT_LOGIN_LIMITS, register_limits="100/hour", post_limits="100/hour"
    )
    counting = CountingLimiter(container.limiter())
    container.limiter.override(providers.Object(counting))
    service = Service(container)
    try:
        async with service.client() as client:
            account = await register(client)
            await client.post(ADD_POST, json={"text": "hello"}, headers=account.auth)
            before = counting.calls
            for _ in range(5):
                assert (await client.get(GET_POSTS, headers=account.auth)).status_code == 200
            assert counting.calls == before
            assert before > 0
    finally:
        await close(container)
