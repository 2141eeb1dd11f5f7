from __future__ import annotations

import attrs

from application.ports import Clock, IssuedToken, PasswordHasher, TokenService
from domain.errors import InvalidCredentials
from domain.ports import UnitOfWorkFactory
from domain.users import Email, NewUser, Password


@attrs.frozen
class Registered:
    user_id: int
    email: str
    token: IssuedToken


class RegisterUser:
    """A new account per email address (case-insensitive); registering also logs the user in."""

    def __init__(
        self, uow: UnitOfWorkFactory, hasher: PasswordHasher, tokens: TokenService, clock: Clock
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock

    async def execute(self, email: str, password: str) -> Registered:
        address = Email(email)
        password_hash = await self._hasher.hash(Password(password))
        async with self._uow() as uow:
            user = await uow.users.add(NewUser(address, password_hash, self._clock.now()))
            await uow.commit()
        return Registered(user.id, user.email.value, self._tokens.issue(user.id))


class LogIn:
    """A token for the right email and password. An unknown email and a wrong password fail alike,
    after the same hashing work."""

    def __init__(self, uow: UnitOfWorkFactory, hasher: PasswordHasher, tokens: TokenService) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens

    async def execute(self, email: str, password: str) -> IssuedToken:
        address = Email(email)
        async with self._uow() as uow:
            user = await uow.users.by_email(address)
        matches = await self._hasher.verify(user.password_hash if user else None, password)
        if user is None or not matches:
            raise InvalidCredentials
        return self._tokens.issue(user.id)
