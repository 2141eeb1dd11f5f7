"""The request body cap, enforced while the body streams in, never after buffering it."""

from __future__ import annotations

import contextlib
import time

from pydantic_core import to_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = to_json({"detail": "Request body too large"})


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Bodies over `max_bytes` get 413.

    When the client announces a larger Content-Length, the answer goes out before any of the body
    is read (so no `100 Continue` is sent either). A body that turns out too large while streaming
    is read on and thrown away, up to `drain_bytes` or `drain_seconds`, before the 413 is sent, so
    the client, still busy sending, does not lose the answer to a connection reset; past those
    bounds the connection is closed.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        drain_bytes: int = 64 * 1024 * 1024,
        drain_seconds: float = 10.0,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes
        self.drain_seconds = drain_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced, has_body = _body_headers(scope)
        if not has_body:
            # No body comes (RFC 9112 section 6.3): nothing to count.
            await self.app(scope, receive, send)
            return
        if announced is not None and announced > self.max_bytes:
            # The server throws away an announced body that arrives after the answer, so the
            # connection can stay open, unless the client is waiting for a `100 Continue` that
            # will never come, or announced more than is worth reading just to discard.
            await _send_413(
                send, close=_expects_continue(scope) or announced > self.max_bytes + self.drain_bytes
            )
            return

        received = 0
        finished = False

        async def limited_receive() -> Message:
            nonlocal received, finished
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                finished = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            drained = finished or await self._drain(receive)
            await _send_413(send, close=not drained)

    async def _drain(self, receive: Receive) -> bool:
        """True when the body ended within the bounds."""
        deadline = time.monotonic() + self.drain_seconds
        discarded = 0
        while discarded <= self.drain_bytes and time.monotonic() < deadline:
            message = await receive()
            if message["type"] != "http.request":
                return False
            discarded += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return False


def _expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope["headers"])


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The first Content-Length as announced (None: none, or not a number), and whether a body
    comes at all (a Content-Length or a Transfer-Encoding)."""
    length: int | None = None
    has_body = False
    for name, value in scope["headers"]:
        if name == b"content-length" and not has_body:
            has_body = True
            with contextlib.suppress(ValueError):
                length = int(value)
        elif name == b"transfer-encoding":
            has_body = True
    return length, has_body


async def _send_413(send: Send, close: bool) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(TOO_LARGE)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": TOO_LARGE})
