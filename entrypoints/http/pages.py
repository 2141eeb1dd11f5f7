"""Pages of get-posts on the wire: `?limit=N&after=CURSOR` in, `Link: <...>; rel="next"` out."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from starlette.requests import Request

from application.posts import Page
from domain.posts import PostPosition
from entrypoints.http.errors import field_error

_POSITION = struct.Struct(">qq")
_MAC_BYTES = 16
# Every cursor has this length: 16 bytes of position and 16 of MAC, base64url without padding.
CURSOR_LENGTH = 43


class PageCursors:
    """Opaque `after` cursors: a position in one user's list (created_at, id), authenticated for
    that user with an HMAC, so that an altered cursor, or another user's, is refused rather than
    followed. A cursor grants nothing either way: every page is of the caller's own list."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"hexpost page cursor", hashlib.sha256).digest()

    def _mac(self, user_id: int, position: bytes) -> bytes:
        return hmac.new(self._key, user_id.to_bytes(8, "big", signed=True) + position, "sha256").digest()[
            :_MAC_BYTES
        ]

    def encode(self, user_id: int, position: PostPosition) -> str:
        packed = _POSITION.pack(position.microseconds, position.id)
        return base64.urlsafe_b64encode(packed + self._mac(user_id, packed)).rstrip(b"=").decode()

    def decode(self, user_id: int, cursor: str) -> PostPosition:
        """Raises ValueError for anything but a cursor this service made for this user."""
        if len(cursor) != CURSOR_LENGTH:
            raise ValueError("not a cursor")
        try:
            raw = base64.b64decode(cursor + "=", altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not a cursor") from None
        packed, mac = raw[: _POSITION.size], raw[_POSITION.size :]
        if not hmac.compare_digest(mac, self._mac(user_id, packed)):
            raise ValueError("not a cursor of this user's list")
        microseconds, post_id = _POSITION.unpack(packed)
        try:
            return PostPosition.at(microseconds, post_id)
        except OverflowError:
            raise ValueError("not a cursor") from None


def _single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise field_error(["query", name], f"{name} may be given once")
    return values[0] if values else None


def requested_page(request: Request, cursors: PageCursors, user_id: int) -> Page | None:
    """The page that `limit` and `after` ask for; None without them (the whole list). Raises a 422
    for a limit that is not an integer from 1 to Page.MAX_LIMIT, or a cursor not made for the caller."""
    limit, after = _single(request, "limit"), _single(request, "after")
    if limit is None:
        if after is not None:
            raise field_error(["query", "limit"], "Field required with after", kind="missing")
        return None
    if not (limit.isascii() and limit.isdigit() and len(limit) <= 4 and 1 <= int(limit) <= Page.MAX_LIMIT):
        raise field_error(["query", "limit"], f"limit must be an integer from 1 to {Page.MAX_LIMIT}")
    if after is None:
        return Page(int(limit))
    try:
        return Page(int(limit), cursors.decode(user_id, after))
    except ValueError:
        raise field_error(["query", "after"], "after must be a cursor from a Link header") from None


def next_link(request: Request, cursors: PageCursors, user_id: int, page: Page, after: PostPosition) -> str:
    """RFC 8288: the next page of the same list, with the same limit."""
    cursor = cursors.encode(user_id, after)
    return f'<{request.url.path}?limit={page.limit}&after={cursor}>; rel="next"'
