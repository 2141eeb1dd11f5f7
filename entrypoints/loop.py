"""The event loop the server runs on: uvloop, whose TCP servers take the connections waiting to be
accepted many at a time.

libuv (since 1.45, uvloop's since 0.18) accepts one connection per turn of its loop, relying on the
listening socket to be reported ready again at the next turn. Under load a turn serves many
requests and lasts milliseconds, so new connections queue in the kernel for seconds with their
requests unread: 1,024 connections opened at once on a busy server sat in the accept queue for up
to 4.4 s (277 waiting at 0.2 s, still 3 at 4.2 s; cached get-posts' p99 4.7 s, most requests
answered in 0.2 s). Here a ready listening socket is drained, up to `ACCEPT_BATCH` connections a
turn, each handed to uvloop as an accepted socket.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import uvloop

log = logging.getLogger("hexpost.server")

# Connections accepted in one turn at most: a flood of them still leaves the turn to the requests
# of the connections already open.
ACCEPT_BATCH = 128
# Out of descriptors or memory: accepting again at once would spin; as asyncio's own servers do.
ACCEPT_RETRY_SECONDS = 1.0
_ACCEPT_LATER = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _DrainingServer(asyncio.AbstractServer):
    """uvloop's server, bound but never started, and the listening sockets this loop accepts on."""

    def __init__(
        self, loop: BatchAcceptingLoop, bound: asyncio.AbstractServer, listening: list[socket.socket]
    ) -> None:
        self._loop = loop
        self._bound = bound
        self._listening = listening

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self._bound.sockets)  # type: ignore[attr-defined]

    def close(self) -> None:
        for listening in self._listening:
            self._loop.stop_accepting(listening)
            listening.close()
        self._listening = []
        self._bound.close()

    async def wait_closed(self) -> None:
        await self._bound.wait_closed()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return bool(self._listening)

    async def start_serving(self) -> None:
        """Serving from the start."""

    async def serve_forever(self) -> None:
        raise NotImplementedError("hexpost's servers are run by uvicorn")


class BatchAcceptingLoop(uvloop.Loop):
    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        **other: Any,
    ) -> asyncio.AbstractServer:
        # uvloop's stubs allow only some combinations of these.
        uvloop_loop: Any = super()
        if ssl is not None or other:
            server: asyncio.AbstractServer = await uvloop_loop.create_server(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl, **other
            )
            return server
        # uvloop resolves and binds (dual stack, reuse, the sockets uvicorn hands its workers), and
        # listens on nothing until started, which it never is.
        bound = await uvloop_loop.create_server(
            protocol_factory, host, port, sock=sock, backlog=backlog, start_serving=False
        )
        listening = []
        for pseudo in bound.sockets:
            listener = socket.socket(fileno=os.dup(pseudo.fileno()))
            listener.setblocking(False)
            listener.listen(backlog)
            self._start_accepting(listener, protocol_factory)
            listening.append(listener)
        return _DrainingServer(self, bound, listening)

    def _start_accepting(
        self, listening: socket.socket, protocol_factory: Callable[[], asyncio.BaseProtocol]
    ) -> None:
        self.add_reader(listening.fileno(), self._accept, listening, protocol_factory)

    def stop_accepting(self, listening: socket.socket) -> None:
        if listening.fileno() >= 0:
            self.remove_reader(listening.fileno())

    def _accept(self, listening: socket.socket, protocol_factory: Callable[[], asyncio.BaseProtocol]) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                connection, _ = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno not in _ACCEPT_LATER:
                    raise
                log.warning(
                    "cannot accept connections (%s): trying again in %.0f s", error, ACCEPT_RETRY_SECONDS
                )
                self.stop_accepting(listening)
                self.call_later(ACCEPT_RETRY_SECONDS, self._accept_again, listening, protocol_factory)
                return
            connection.setblocking(False)
            opened = self.create_task(self.connect_accepted_socket(protocol_factory, connection))
            opened.add_done_callback(_opened)

    def _accept_again(
        self, listening: socket.socket, protocol_factory: Callable[[], asyncio.BaseProtocol]
    ) -> None:
        if listening.fileno() >= 0:
            self._start_accepting(listening, protocol_factory)


def _opened(opened: asyncio.Task[Any]) -> None:
    if not opened.cancelled() and opened.exception() is not None:
        # The client went away before its connection was set up: nothing to serve.
        log.info("connection not opened: %r", opened.exception())
