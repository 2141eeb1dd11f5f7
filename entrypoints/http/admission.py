"""Admission control: how many requests one process works on at once, and how many may wait."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection

from pydantic_core import to_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUSY = to_json({"detail": "Server busy, retry shortly"})
# Shedding answers a burst: the queue drains within about a second at the default limits.
BUSY_RETRY_AFTER_SECONDS = b"1"
_BUSY_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BUSY)).encode()),
    (b"retry-after", BUSY_RETRY_AFTER_SECONDS),
]
# While queued, the request's body is read ahead (to notice a client that hangs up) only up to
# this much; past it the server's own flow control holds the rest back.
_READ_AHEAD_BYTES = 64 * 1024


class Admission:
    """At most `max_in_flight` requests run at once; up to `max_queued` more wait for a slot and get
    one in arrival order (`None`: no bound); a request beyond that is answered 503 with
    `Retry-After` at once. A queued request whose client hangs up leaves the queue. Requests for
    `unqueued_paths` are never held back.

    The way in costs a comparison and an increment; only a request that has to wait allocates.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_in_flight: int,
        max_queued: int | None,
        unqueued_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.unqueued_paths = frozenset(unqueued_paths)
        self.in_flight = 0
        # Invariant: someone waits only while every slot is taken; a finishing request hands its
        # slot straight to the first waiter, so a newcomer can never overtake the queue.
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiting)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.unqueued_paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight < self.max_in_flight:
            self.in_flight += 1
        elif self.max_queued is not None and len(self._waiting) >= self.max_queued:
            await send({"type": "http.response.start", "status": 503, "headers": _BUSY_HEADERS})
            await send({"type": "http.response.body", "body": BUSY})
            return
        else:
            admitted = await self._wait_for_slot(receive)
            if admitted is None:
                return
            receive = admitted
        try:
            await self.app(scope, receive, send)
        finally:
            if self._waiting:
                self._release()
            else:
                self.in_flight -= 1

    def _release(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1

    async def _wait_for_slot(self, receive: Receive) -> Receive | None:
        """Waits in the queue, listening for the client meanwhile. Returns the receive channel
        the request continues with (what was read ahead comes first), or None when the client
        hung up, in which case its place is given up and nothing is answered."""
        slot = asyncio.get_running_loop().create_future()
        self._waiting.append(slot)
        read_ahead: list[Message] = []
        read_bytes = 0
        listener: asyncio.Future[Message] | None = asyncio.ensure_future(receive())
        try:
            while not slot.done():
                if listener is None:
                    await slot
                    break
                await asyncio.wait((slot, listener), return_when=asyncio.FIRST_COMPLETED)
                if not listener.done():
                    continue
                message = listener.result()
                if message["type"] == "http.disconnect":
                    listener = None
                    self._give_up(slot)
                    return None
                read_ahead.append(message)
                read_bytes += len(message.get("body", b""))
                # After the whole body, the next receive waits for nothing but a hang-up.
                listener = asyncio.ensure_future(receive()) if read_bytes <= _READ_AHEAD_BYTES else None
        except BaseException:
            if listener is not None:
                listener.cancel()
            self._give_up(slot)
            raise
        return _replay(read_ahead, listener, receive)

    def _give_up(self, slot: asyncio.Future[None]) -> None:
        if slot.done() and not slot.cancelled():
            # The slot was handed over just as the client left: pass it on.
            self._release()
            return
        slot.cancel()
        self._waiting.remove(slot)


def _replay(read_ahead: list[Message], pending: asyncio.Future[Message] | None, receive: Receive) -> Receive:
    if not read_ahead and pending is None:
        return receive
    backlog = deque(read_ahead)

    async def replaying_receive() -> Message:
        nonlocal pending
        if backlog:
            return backlog.popleft()
        if pending is not None:
            message, pending = await pending, None
            return message
        return await receive()

    return replaying_receive
