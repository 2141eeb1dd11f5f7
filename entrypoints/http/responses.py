from __future__ import annotations

from typing import Any

from pydantic_core import to_json
from starlette.responses import Response

from application.posts import RenderedPosts


class JSON(Response):
    """JSON encoded by pydantic-core's Rust serializer."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content)


def posts_json(posts: RenderedPosts) -> Response:
    """A rendered list of posts, saying whether it came from the cache."""
    return Response(
        posts.payload,
        media_type=JSON.media_type,
        headers={"X-Cache": "hit" if posts.from_cache else "miss"},
    )
