"""Wire pieces both HTTP APIs speak: the email field as their schemas describe it and the timestamp
format of a post."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import Field
from pydantic_core import to_json

from domain.users import Email

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _not_special_use_domain() -> str:
    # email-validator, behind the domain's Email, refuses special-use domains (`a@b.test`), in any case.
    names = "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in name) for name in SPECIAL_USE_DOMAIN_NAMES)
    return rf"^(?!.*[.@](?:{names})\.?$)"


# Validated by the domain's Email (422 when invalid); the schema says what it accepts.
EmailField = Annotated[
    str,
    Field(
        max_length=Email.MAX_LENGTH,
        json_schema_extra={"format": "email", "pattern": _not_special_use_domain()},
    ),
]


def json_array_piece(items: Sequence[Any], *, first: bool, last: bool) -> bytes:
    """A page's piece of a JSON array made a page at a time: the pieces in order, from the first
    page to the last, make the whole array."""
    encoded = [to_json(item) for item in items]
    opening = b"[" if first else b"," if encoded else b""
    return b"".join((opening, b",".join(encoded), b"]" if last else b""))
