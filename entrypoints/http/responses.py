from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import to_json
from starlette.responses import Response


class JSON(Response):
    """JSON encoded by pydantic-core's Rust serializer."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content)


def raw_json(payload: bytes, headers: Mapping[str, str] | None = None) -> Response:
    """An already serialized JSON body, such as a cached one."""
    return Response(payload, media_type=JSON.media_type, headers=headers)
