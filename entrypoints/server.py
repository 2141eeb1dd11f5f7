"""The HTTP server: uvicorn's httptools protocol with the connection bounds uvicorn lacks.

uvicorn closes a keep-alive connection that idles between requests, but not one that never sends
its first request, nor one whose body stops short of its Content-Length; and httptools buffers a
header of any size. The protocol here adds, per connection: a deadline for the request head
(first request: from the connection's start; later ones: from their first byte), an idle timeout
while a body is expected, a cap on the head's size, and a cap on open connections per process
(where a newcomer takes the place of a connection that idles, if there is one).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import resource
import time
from asyncio import TimerHandle
from typing import Any

import attrs
import httptools
from pydantic_core import to_json
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from entrypoints.settings import Settings

log = logging.getLogger("hexpost.server")

# File descriptors kept for what is not a client connection: database and Redis pools, the
# listening socket, logs.
RESERVED_DESCRIPTORS = 256
_REFUSAL_WARNING_INTERVAL_SECONDS = 10.0
# How many open connections a newcomer over the cap looks at for an idle one to replace: bounded,
# so that a flood of connections costs little each.
_EVICTION_SAMPLE = 64


@attrs.frozen
class ConnectionLimits:
    """None lifts a limit."""

    max_connections: int | None
    max_header_bytes: int | None
    header_timeout_seconds: float | None
    body_timeout_seconds: float | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_connections=settings.max_connections,
            max_header_bytes=settings.max_header_bytes,
            header_timeout_seconds=settings.header_timeout_seconds,
            body_timeout_seconds=settings.body_timeout_seconds,
        )


class _HeadTooLarge(Exception):
    pass


def _answer(status: int, detail: str) -> bytes:
    body = to_json({"detail": detail})
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
    )


HEAD_TOO_LARGE = _answer(431, "Request header fields too large")
TIMED_OUT = _answer(408, "Request timeout")


class _Refusals:
    """Counts refused connections and says so at most once per interval, so that a flood of
    connections does not become a flood of log lines."""

    count = 0
    reported_at = 0.0

    @classmethod
    def note(cls, limit: int) -> None:
        cls.count += 1
        now = time.monotonic()
        if now - cls.reported_at >= _REFUSAL_WARNING_INTERVAL_SECONDS:
            log.warning(
                "%d connection(s) refused since the last report: %d are open, the limit "
                "(HEXPOST_MAX_CONNECTIONS)",
                cls.count,
                limit,
            )
            cls.count = 0
            cls.reported_at = now


class CoalescedTransport:
    """A connection's transport whose small writes of one turn of the event loop go out together, at
    its end: an answer's head and body (uvicorn writes them apart) in one system call instead of
    two (cached get-posts 1.40x on the embedded default, 1.23x on MySQL + Redis, `python -m
    bench.ab`). A write that brings what is held to `HELD_BYTES` sends it all at once, so a large or
    streamed answer is held no longer than it takes to write, and the transport's flow control sees
    every byte as before. Closing sends what is held first."""

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    HELD_BYTES = 64 * 1024

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not self._held:
            if len(data) >= self.HELD_BYTES:
                self._transport.write(data)
                return
            self._loop.call_soon(self.flush)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes >= self.HELD_BYTES:
            self.flush()

    def flush(self) -> None:
        held = self._held
        if not held:
            return
        self._held = []
        self._held_bytes = 0
        if self._transport.is_closing():
            return
        if len(held) == 1:
            self._transport.write(held[0])
        else:
            self._transport.writelines(held)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # The rest of the transport's interface (extra info, reading, flow control) is the
        # transport's own.
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One connection. The request being read is in its head until the head is complete, then in
    its body until the message is complete. A head over the size cap is answered 431; a head not
    complete by its deadline, or a body idle for the body timeout, 408 (or, when nothing of a
    request arrived, or an answer is already under way, the connection is just closed)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._max_head = limits.max_header_bytes
        self._head_timeout = limits.header_timeout_seconds
        self._body_timeout = limits.body_timeout_seconds
        self._in_head = True
        # Bytes received since the current head began; a chunk that finished one request and
        # began the next counts towards neither, so this may fall short by one read but never
        # overstates. The exact size is checked when the head is complete.
        self._head_bytes = 0
        self._head_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None
        self._body_seen_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Duck-typed: what uvicorn does with it is write, ask is_closing and close; anything else
        # goes to the transport itself.
        self.transport = CoalescedTransport(transport, self.loop)  # type: ignore[assignment]
        limit = self.limits.max_connections
        if limit is not None and len(self.connections) > limit and not self._evict_an_idle_connection():
            _Refusals.note(limit)
            transport.close()
            return
        if self._head_timeout is not None:
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _evict_an_idle_connection(self) -> bool:
        """At the cap, a connection that waits for a request (a new one that has not finished
        its first head, or a kept-alive one between requests) makes room for the newcomer: the one
        of a sample closest to its own timeout. So a flood of idle connections cannot lock out
        clients that send requests; only connections with requests in hand fill the cap."""
        victim: BoundedHttpToolsProtocol | None = None
        earliest = float("inf")
        for connection in itertools.islice(self.connections, _EVICTION_SAMPLE):
            if connection is self or not isinstance(connection, BoundedHttpToolsProtocol):
                continue
            deadline = connection._idle_deadline()
            if deadline is not None and deadline < earliest:
                victim, earliest = connection, deadline
        if victim is None:
            return False
        self.connections.discard(victim)
        victim._cancel_timers()
        victim.transport.close()
        return True

    def _idle_deadline(self) -> float | None:
        """When this connection would be closed for waiting, or None while it has a request in hand."""
        if not self._in_head or (self.cycle is not None and not self.cycle.response_complete):
            return None
        timer = self._head_timer or self.timeout_keep_alive_task
        return None if timer is None else timer.when()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with the head bounded and the timers kept.
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        elif self._body_timer is not None:
            self._body_seen_at = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(HEAD_TOO_LARGE, "request head over HEXPOST_MAX_HEADER_BYTES")
                return
            self._invalid()
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            # Zero in the common case: the request came whole, and nothing of the next one yet.
            if self._head_bytes:
                self._bound_head()
        elif self._body_timer is None and self._body_timeout is not None:
            self._body_seen_at = self.loop.time()
            self._body_timer = self.loop.call_later(self._body_timeout, self._body_timed_out)

    def _bound_head(self) -> None:
        """Part of a head is in: refuse it once too large, else make sure its deadline runs."""
        if self._max_head is not None and self._head_bytes > self._max_head:
            self._refuse(HEAD_TOO_LARGE, "request head over HEXPOST_MAX_HEADER_BYTES")
        elif (
            self._head_timer is None
            and self._head_timeout is not None
            and (self.cycle is None or self.cycle.response_complete)
            and not self.transport.is_closing()
        ):
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        limit = self._max_head
        if limit is not None:
            # The head as sent, but for the request line's method and version. A plain loop: a
            # generator costs three times as much, on every request.
            size = len(self.url)
            for name, value in self.headers:
                size += len(name) + len(value) + 4
            if size > limit:
                raise _HeadTooLarge
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _refuse(self, answer: bytes, reason: str) -> None:
        """Answers, unless that would interleave with an answer already under way, and closes."""
        if self.client:
            log.info("%s:%d: %s", *self.client, reason)
        cycle = self.cycle
        if self._in_head:
            if cycle is None or cycle.response_complete:
                self.transport.write(answer)
        elif cycle is not None and not cycle.response_started:
            # The application is waiting for the rest of the body: it hears that the client left,
            # and whatever it answers goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.write(answer)
        self._cancel_timers()
        self.transport.close()

    def _invalid(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0:
            # Not a byte of a request: an idle connection, closed without an answer.
            self._cancel_timers()
            self.transport.close()
            return
        self._refuse(TIMED_OUT, "request head not complete within HEXPOST_HEADER_TIMEOUT_SECONDS")

    def _body_timed_out(self) -> None:
        self._body_timer = None
        timeout = self._body_timeout
        if self._in_head or self.transport.is_closing() or timeout is None:
            return
        now = self.loop.time()
        if self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue):
            # The server holds the body back (the application has not read it yet): not the
            # client's delay.
            self._body_seen_at = now
        idle = now - self._body_seen_at
        if idle < timeout:
            self._body_timer = self.loop.call_later(timeout - idle, self._body_timed_out)
            return
        self._refuse(TIMED_OUT, "request body idle for HEXPOST_BODY_TIMEOUT_SECONDS")


def raise_descriptor_limit(max_connections: int | None) -> int | None:
    """Raises this process's open-file limit as far as `max_connections` needs (and the hard
    limit allows), so that the connection cap, not the kernel, turns connections away. Returns the
    cap that fits: `max_connections`, or less when the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if max_connections is None else max_connections + RESERVED_DESCRIPTORS
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    if max_connections is None or max_connections + RESERVED_DESCRIPTORS <= soft:
        return max_connections
    fitting = max(1, soft - RESERVED_DESCRIPTORS)
    log.warning(
        "HEXPOST_MAX_CONNECTIONS=%d needs %d open files but the limit is %d: at most %d connections",
        max_connections,
        max_connections + RESERVED_DESCRIPTORS,
        soft,
        fitting,
    )
    return fitting
