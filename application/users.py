from __future__ import annotations

from typing import Protocol

import attrs

from application.limits import LoginThrottle, RateLimit
from application.ports import Clock, IssuedToken, PasswordHasher, TokenService
from domain.errors import InvalidCredentials, InvalidPassword
from domain.ports import UnitOfWorkFactory
from domain.users import Email, NewUser, Password


class CommonPasswords(Protocol):
    def __contains__(self, password: str) -> bool:
        """Whether `password` is on the list, compared case-insensitively."""
        ...


class PasswordPolicy:
    """A new password (registration, password change) follows the Password rules and, unless the
    list is empty, is not one of the most common passwords."""

    def __init__(self, common: CommonPasswords) -> None:
        self._common = common

    def new_password(self, value: str) -> Password:
        password = Password(value)
        if value in self._common:
            raise InvalidPassword("password is one of the most commonly used ones; choose another")
        return password


@attrs.frozen
class Registered:
    user_id: int
    email: str
    token: IssuedToken


class RegisterUser:
    """A new account per email address (case-insensitive); registering also logs the user in.
    Registrations are limited per client address."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenService,
        clock: Clock,
        policy: PasswordPolicy,
        per_address: RateLimit,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._policy = policy
        self._per_address = per_address

    async def execute(self, email: str, password: str, address: str) -> Registered:
        await self._per_address.count(address)
        account = Email(email)
        password_hash = await self._hasher.hash(self._policy.new_password(password))
        async with self._uow() as uow:
            user = await uow.users.add(NewUser(account, password_hash, self._clock.now()))
            await uow.commit()
        return Registered(user.id, user.email.value, self._tokens.issue(user.id))


class LogIn:
    """A token for the right email and password. An unknown email and a wrong password fail alike,
    after the same hashing work; failures are throttled (LoginThrottle)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenService,
        throttle: LoginThrottle,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._throttle = throttle

    async def execute(self, email: str, password: str, address: str) -> IssuedToken:
        account = Email(email)
        user_id: int | None = None

        async def verify() -> bool:
            nonlocal user_id
            async with self._uow() as uow:
                user = await uow.users.by_email(account)
            matches = await self._hasher.verify(user.password_hash if user else None, password)
            user_id = user.id if user is not None and matches else None
            return user_id is not None

        if not await self._throttle.attempt(account.value, address, verify):
            raise InvalidCredentials
        assert user_id is not None
        return self._tokens.issue(user_id)
