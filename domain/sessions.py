"""Sessions: one device's sign-in, kept alive by a refresh token that works once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import ClassVar

import attrs


def new_session_id() -> str:
    """Opaque and unguessable: 128 random bits, never ordered."""
    return secrets.token_urlsafe(16)


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@attrs.frozen
class RefreshToken:
    """`<user id>.<session id>.<generation>.<secret>`: the secret is 256 random bits, and only its
    hash is stored. The generation says which rotation of its session issued it, so a token that was
    already used is recognised as such (reuse) rather than as merely unknown."""

    MAX_LENGTH: ClassVar[int] = 160

    user_id: int
    session_id: str
    generation: int
    secret: str = attrs.field(repr=False)

    @classmethod
    def issue(cls, user_id: int, session_id: str, generation: int) -> RefreshToken:
        return cls(user_id, session_id, generation, secrets.token_urlsafe(32))

    @classmethod
    def parse(cls, value: str) -> RefreshToken | None:
        """None for anything this service cannot have issued."""
        if len(value) > cls.MAX_LENGTH or not value.isascii():
            return None
        parts = value.split(".")
        if len(parts) != 4:
            return None
        user, session_id, generation, secret = parts
        if not (user.isdigit() and generation.isdigit() and session_id and secret):
            return None
        if len(user) > 19 or len(generation) > 18:
            return None
        user_id = int(user)
        # Ids are positive 64-bit signed integers; the canonical spelling only, so that one token
        # has one form.
        if not 0 < user_id < 2**63 or str(user_id) != user or str(int(generation)) != generation:
            return None
        return cls(user_id, session_id, int(generation), secret)

    @property
    def value(self) -> str:
        return f"{self.user_id}.{self.session_id}.{self.generation}.{self.secret}"

    @property
    def hash(self) -> str:
        return token_hash(self.value)

    def matches(self, stored_hash: str) -> bool:
        return hmac.compare_digest(self.hash.encode(), stored_hash.encode())


@attrs.frozen
class Session:
    """Alive until it is ended or its current refresh token expires."""

    ID_MAX_LENGTH: ClassVar[int] = 32

    id: str
    user_id: int
    created_at: datetime
    last_used_at: datetime
    refresh_hash: str = attrs.field(repr=False)
    refresh_generation: int
    refresh_expires_at: datetime
    ended_at: datetime | None = None

    def alive_at(self, now: datetime) -> bool:
        return self.ended_at is None and now < self.refresh_expires_at
