"""Wire pieces both HTTP APIs speak: media types, the register and token models, the email field as
their schemas describe it, how a list of posts is rendered, and the configured limits their
messages name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any

import attrs
from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from domain.posts import Post, PostText
from domain.users import Email, Password

JSON_MEDIA_TYPE = "application/json"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
FORM_MEDIA_TYPES = (FORM_MEDIA_TYPE, "multipart/form-data")
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


# Strings longer than this are encoded a slice at a time (about 3 us of the core each): the event
# loop serves other requests between slices of a long post. With slices of 16 KiB, while 8 clients
# read an 80 MiB list of 1 MiB posts, the small requests served between them came at 12,000-13,200
# req/s with a p99 of 1.7-2.1 ms on the embedded default, against 14,200-14,900 and 1.5-1.9 ms now
# (MySQL + Redis: 6,100-6,300 and 3.6-4.1 ms, against 6,900-7,300 and 3.1-3.4 ms); big lists come
# 10-18 % slower.
SLICE_CHARS = 4 * 1024


def json_array_piece(items: Sequence[Mapping[str, Any]], *, first: bool, last: bool) -> Iterator[bytes]:
    """A page's piece of a JSON array made a page at a time, as slices: the pieces in order, from
    the first page to the last, make the whole array. The items are flat objects, encoded as
    `to_json` encodes them; one holding a string over `SLICE_CHARS` comes in slices of its own."""
    done: list[bytes] = [b"[" if first else b"," if items else b""]
    for index, item in enumerate(items):
        if index:
            done.append(b",")
        if not any(_long(value) for value in item.values()):
            done.append(to_json(item))
            continue
        yield b"".join(done)
        done = []
        yield from _object_in_slices(item)
    if last:
        done.append(b"]")
    yield b"".join(done)


def _long(value: Any) -> bool:
    return isinstance(value, str) and len(value) > SLICE_CHARS


def _object_in_slices(item: Mapping[str, Any]) -> Iterator[bytes]:
    """`to_json(item)`, with each long string encoded in slices (escaping is per character, so the
    slices' escapes make the whole string's)."""
    opening = b"{"
    for key, value in item.items():
        head = opening + to_json(key) + b":"
        opening = b","
        if not _long(value):
            yield head + to_json(value)
            continue
        yield head + b'"'
        for start in range(0, len(value), SLICE_CHARS):
            yield to_json(value[start : start + SLICE_CHARS])[1:-1]
        yield b'"'
    yield b"}"


class RequestBody(BaseModel):
    """Base of every JSON request body: unknown fields (ids, owners, flags) are ignored, never
    honoured."""

    model_config = ConfigDict(extra="ignore")


class RegisterRequest(RequestBody):
    email: EmailField
    password: Annotated[str, Field(min_length=Password.MIN_LENGTH, max_length=Password.MAX_LENGTH)]


class BearerResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"


def timestamp(post: Post) -> str:
    return post.created_at.strftime(TIMESTAMP_FORMAT)


@attrs.frozen
class Limits:
    """The configured limits that answers and the API documents name."""

    max_post_bytes: int = PostText.DEFAULT_MAX_BYTES
    cache_ttl_seconds: int = 300

    @property
    def post_size(self) -> str:
        """The contract's wording for the default limit; the configured number of bytes otherwise."""
        if self.max_post_bytes == PostText.DEFAULT_MAX_BYTES:
            return "1 MB"
        return f"{self.max_post_bytes} bytes"

    @property
    def cache_lifetime(self) -> str:
        minutes, seconds = divmod(self.cache_ttl_seconds, 60)
        if seconds:
            return f"{self.cache_ttl_seconds} seconds"
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
