from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic_core import to_json
from starlette.responses import Response, StreamingResponse

from application.posts import RenderedPosts
from entrypoints.allocator import ALLOCATOR


class JSON(Response):
    """JSON encoded by pydantic-core's Rust serializer."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content)


class Prepared(Response):
    """A response given its headers as they are sent, skipping Response's header building (the
    cached list's answer, on the hot path)."""

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.body = body
        self.background = None


_JSON_TYPE = (b"content-type", JSON.media_type.encode())
_PRIVATE = (b"cache-control", b"private, no-cache")
_FROM_CACHE = {True: (b"x-cache", b"hit"), False: (b"x-cache", b"miss")}


def posts_json(posts: RenderedPosts, if_none_match: str | None, link: str | None = None) -> Response:
    """A rendered list of posts, saying whether it came from the cache; a 304 without a body when
    the request's If-None-Match names its tag. Clients may keep it, but must ask again before
    using it (`no-cache`), and shared caches must not keep it at all (`private`). A list too long
    to hold whole is sent as it is rendered, without a tag (it would be needed before it is known)."""
    headers = [_PRIVATE, _FROM_CACHE[posts.from_cache]]
    if link is not None:
        headers.append((b"link", link.encode("latin-1")))
    if posts.tag is not None:
        etag = f'"{posts.tag}"'
        headers.append((b"etag", etag.encode("latin-1")))
        if _matches(if_none_match, etag):
            return Prepared(304, headers)
    if posts.rest is None:
        headers += (_JSON_TYPE, (b"content-length", str(len(posts.payload)).encode("latin-1")))
        return Prepared(200, headers, posts.payload)
    response = StreamingResponse(_streamed(posts.payload, posts.rest), media_type=JSON.media_type)
    response.raw_headers = [*headers, *response.raw_headers]
    return response


async def _streamed(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    with ALLOCATOR.big_answer():
        yield head
        del head
        async for piece in rest:
            yield piece


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 section 13.1.2: `*`, or a list of entity tags compared weakly (W/ ignored)."""
    if if_none_match is None:
        return False
    candidates = [candidate.strip() for candidate in if_none_match.split(",")]
    return any(candidate == "*" or candidate.removeprefix("W/") == etag for candidate in candidates)
