from __future__ import annotations

from typing import Protocol

import attrs

from application.limits import LoginThrottle, RateLimit
from application.ports import Clock, IssuedToken, PasswordHasher, TokenService
from domain.errors import DomainError, InvalidCredentials, InvalidEmail, InvalidPassword
from domain.ports import UnitOfWorkFactory
from domain.users import Email, NewUser, Password, User


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
        account = Email.parse(email)
        password_hash = await self._hasher.hash(self._policy.new_password(password))
        async with self._uow() as uow:
            user = await uow.users.add(NewUser(account, password_hash, self._clock.now()))
            await uow.commit()
        return Registered(user.id, user.email.value, self._tokens.issue(user.id))


def _as_once_stored(email: str) -> Email | None:
    """How an address today's rules refuse was stored if looser rules once let it in; None when no
    rules ever could have."""
    candidate = email.strip().lower()
    if "@" not in candidate or len(candidate) > Email.MAX_LENGTH or not candidate.isprintable():
        return None
    try:
        candidate.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return Email(candidate)


class LogIn:
    """A token for the right email and password. An unknown email and a wrong password fail alike,
    after the same hashing work; failures are throttled (LoginThrottle). A successful login whose
    stored hash was made with older parameters stores a hash made with the current ones. An account
    stored under an address today's rules refuse still logs in; with such an address every failure
    is the validation error, so it tells nothing either."""

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
        failure: DomainError = InvalidCredentials()
        try:
            account = Email.parse(email)
        except InvalidEmail as refused:
            once_stored = _as_once_stored(email)
            if once_stored is None:
                raise
            account, failure = once_stored, refused
        verified: User | None = None

        async def verify() -> bool:
            nonlocal verified
            async with self._uow() as uow:
                user = await uow.users.by_email(account)
            matches = await self._hasher.verify(user.password_hash if user else None, password)
            verified = user if matches else None
            return verified is not None

        if not await self._throttle.attempt(account.value, address, verify):
            raise failure
        assert verified is not None
        if self._hasher.needs_rehash(verified.password_hash):
            await self._upgrade(verified, password)
        return self._tokens.issue(verified.id)

    async def _upgrade(self, user: User, password: str) -> None:
        new_hash = await self._hasher.hash(Password(password))
        async with self._uow() as uow:
            await uow.users.upgrade_password_hash(user.id, user.password_hash, new_hash)
            await uow.commit()
