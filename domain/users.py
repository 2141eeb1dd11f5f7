from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import attrs
from email_validator import EmailNotValidError, validate_email

from domain.errors import InvalidEmail, InvalidPassword


def _normalise_email(value: str) -> str:
    trimmed = value.strip()
    if len(trimmed) > Email.MAX_LENGTH:
        raise InvalidEmail(f"email must be at most {Email.MAX_LENGTH} characters")
    try:
        # The same rules as pydantic's EmailStr, which clients of FastAPI services already know.
        validated = validate_email(trimmed, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    return validated.normalized.lower()


@attrs.frozen
class Email:
    """An email address, trimmed, validated and lower-cased: spellings differing in case are one account.

    `parse` validates an address as it enters the service; the constructor trusts one read back from
    the store, which was valid under the rules in force when it entered, even if the rules have
    tightened since."""

    MAX_LENGTH: ClassVar[int] = 320

    value: str

    @classmethod
    def parse(cls, value: str) -> Email:
        return cls(_normalise_email(value))

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Password:
    """A plain password, taken exactly as sent: 8 to 128 characters of any kind, encodable as UTF-8."""

    MIN_LENGTH: ClassVar[int] = 8
    MAX_LENGTH: ClassVar[int] = 128

    value: str = attrs.field(repr=False)

    @value.validator
    def _check(self, _attribute: object, value: str) -> None:
        if not self.MIN_LENGTH <= len(value) <= self.MAX_LENGTH:
            raise InvalidPassword(f"password must be {self.MIN_LENGTH} to {self.MAX_LENGTH} characters long")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidPassword("password must be valid Unicode text") from exc


@attrs.frozen
class User:
    id: int
    email: Email
    password_hash: str = attrs.field(repr=False)
    created_at: datetime


@attrs.frozen
class NewUser:
    """A user about to be stored; the repository gives it an id."""

    email: Email
    password_hash: str = attrs.field(repr=False)
    created_at: datetime
