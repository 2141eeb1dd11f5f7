from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from application.posts import RenderedPosts


class JSON(Response):
    """JSON encoded by pydantic-core's Rust serializer."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content)


def posts_json(posts: RenderedPosts, request: Request, link: str | None = None) -> Response:
    """A rendered list of posts, saying whether it came from the cache; a 304 without a body when
    the request's If-None-Match names its tag. Clients may keep it, but must ask again before
    using it (`no-cache`), and shared caches must not keep it at all (`private`). A list too long
    to hold whole is sent as it is rendered, without a tag (it would be needed before it is known)."""
    headers = {
        "Cache-Control": "private, no-cache",
        "X-Cache": "hit" if posts.from_cache else "miss",
    }
    if link is not None:
        headers["Link"] = link
    if posts.tag is not None:
        etag = f'"{posts.tag}"'
        headers["ETag"] = etag
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
    if posts.rest is None:
        return Response(posts.payload, media_type=JSON.media_type, headers=headers)
    return StreamingResponse(
        _streamed(posts.payload, posts.rest), media_type=JSON.media_type, headers=headers
    )


async def _streamed(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
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
