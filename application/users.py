from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs

from application.callers import Caller
from application.limits import LoginThrottle, RateLimit
from application.ports import Clock, PasswordHasher, PostsCache
from application.sessions import SessionStarter, SignedIn, forget_sessions
from domain.errors import (
    DomainError,
    InvalidCredentials,
    InvalidEmail,
    InvalidPassword,
    NotAuthenticated,
    WrongPassword,
)
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
    # None when the registration was asked not to sign the user in.
    signed_in: SignedIn | None


class RegisterUser:
    """A new account per email address (case-insensitive); registering also signs the user in, in a
    new session, unless asked not to. Registrations are limited per client address."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        starter: SessionStarter,
        clock: Clock,
        policy: PasswordPolicy,
        per_address: RateLimit,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._starter = starter
        self._clock = clock
        self._policy = policy
        self._per_address = per_address

    async def execute(self, email: str, password: str, address: str, sign_in: bool = True) -> Registered:
        await self._per_address.count(address)
        account = Email.parse(email)
        password_hash = await self._hasher.hash(self._policy.new_password(password))
        async with self._uow() as uow:
            user = await uow.users.add(NewUser(account, password_hash, self._clock.now()))
            signed_in = await self._starter.start(uow.sessions, user.id) if sign_in else None
            await uow.commit()
        return Registered(user.id, user.email.value, signed_in)


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
    """A new session for the right email and password. An unknown email and a wrong password fail
    alike, after the same hashing work; failures are throttled (LoginThrottle). A successful login whose
    stored hash was made with older parameters stores a hash made with the current ones. An account
    stored under an address today's rules refuse still logs in; with such an address every failure
    is the validation error, so it tells nothing either."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        starter: SessionStarter,
        throttle: LoginThrottle,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._starter = starter
        self._throttle = throttle

    async def execute(self, email: str, password: str, address: str) -> SignedIn:
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
        async with self._uow() as uow:
            signed_in = await self._starter.start(uow.sessions, verified.id)
            await uow.commit()
        return signed_in

    async def _upgrade(self, user: User, password: str) -> None:
        new_hash = await self._hasher.hash(Password(password))
        async with self._uow() as uow:
            await uow.users.upgrade_password_hash(user.id, user.password_hash, new_hash)
            await uow.commit()


async def _confirm_password(
    uow: UnitOfWorkFactory,
    hasher: PasswordHasher,
    throttle: LoginThrottle,
    caller: Caller,
    password: str,
    address: str,
) -> None:
    """That `password` is the caller's; a wrong one counts as a failed login of their account."""
    async with uow() as work:
        user = await work.users.get(caller.user_id)
    if user is None:
        raise NotAuthenticated
    password_hash = user.password_hash

    async def verify() -> bool:
        return await hasher.verify(password_hash, password)

    if not await throttle.attempt(user.email.value, address, verify):
        raise WrongPassword


@attrs.frozen
class Account:
    id: int
    email: str
    created_at: datetime


class GetAccount:
    """The caller's own account."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, caller: Caller) -> Account:
        async with self._uow() as uow:
            user = await uow.users.get(caller.user_id)
        if user is None:
            raise NotAuthenticated
        return Account(user.id, user.email.value, user.created_at)


class ChangePassword:
    """With the current password shown again, a new one (following the password policy) replaces
    it, and every other session of the user ends: whoever else knew the old one is signed out. A
    wrong current password counts as a failed login."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        cache: PostsCache,
        clock: Clock,
        policy: PasswordPolicy,
        throttle: LoginThrottle,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._cache = cache
        self._clock = clock
        self._policy = policy
        self._throttle = throttle

    async def execute(self, caller: Caller, current_password: str, new_password: str, address: str) -> None:
        new = self._policy.new_password(new_password)
        await _confirm_password(self._uow, self._hasher, self._throttle, caller, current_password, address)
        new_hash = await self._hasher.hash(new)
        async with self._uow() as uow:
            await uow.users.set_password_hash(caller.user_id, new_hash)
            await uow.sessions.end_all(caller.user_id, self._clock.now(), keep=caller.session_id)
            await uow.commit()
        await forget_sessions(self._cache, caller.user_id)


class DeleteAccount:
    """With the password shown again, the account goes, with all its posts and sessions, in one
    transaction; its cached lists are dropped. The email is free to register again, as a new user.
    A wrong password counts as a failed login."""

    def __init__(
        self, uow: UnitOfWorkFactory, hasher: PasswordHasher, cache: PostsCache, throttle: LoginThrottle
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._cache = cache
        self._throttle = throttle

    async def execute(self, caller: Caller, password: str, address: str) -> None:
        await _confirm_password(self._uow, self._hasher, self._throttle, caller, password, address)
        async with self._uow() as uow:
            await uow.posts.delete_all_of(caller.user_id)
            await uow.sessions.delete_all_of(caller.user_id)
            await uow.users.delete(caller.user_id)
            await uow.commit()
        await forget_sessions(self._cache, caller.user_id)
