"""The server's event loop takes the connections waiting to be accepted many at a turn
(entrypoints/loop.py)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, ClassVar, cast

import pytest

from entrypoints.loop import ACCEPT_BATCH, BatchAcceptingLoop


class Counted(asyncio.Protocol):
    opened: ClassVar[list[asyncio.BaseTransport]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Counted.opened.append(transport)


def port_of(server: asyncio.AbstractServer) -> int:
    # uvicorn reads `sockets` as asyncio.Server has it; AbstractServer does not promise it.
    port: int = cast(Any, server).sockets[0].getsockname()[1]
    return port


@contextmanager
def busy_loop() -> Iterator[BatchAcceptingLoop]:
    """A loop each of whose turns takes 5 ms, as under load."""
    loop = BatchAcceptingLoop()

    def work() -> None:
        time.sleep(0.005)
        loop.call_soon(work)

    loop.call_soon(work)
    Counted.opened = []
    try:
        yield loop
    finally:
        for transport in Counted.opened:
            transport.close()
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()


def waiting_connections(port: int, count: int, stack: ExitStack) -> None:
    """`count` clients connected: the kernel completes their handshakes before any is accepted."""
    for _ in range(count):
        client = stack.enter_context(socket.socket())
        client.settimeout(5)
        client.connect(("127.0.0.1", port))


def test_connections_waiting_to_be_accepted_are_taken_many_in_one_turn() -> None:
    with busy_loop() as loop, ExitStack() as clients:
        server = loop.run_until_complete(loop.create_server(Counted, "127.0.0.1", 0, backlog=512))
        try:
            waiting_connections(port_of(server), ACCEPT_BATCH + 72, clients)

            # About 20 turns: one connection a turn would have made 20.
            loop.run_until_complete(asyncio.sleep(0.1))

            assert len(Counted.opened) == ACCEPT_BATCH + 72
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())


def test_a_closed_server_accepts_no_more_connections() -> None:
    with busy_loop() as loop:
        server = loop.run_until_complete(loop.create_server(Counted, "127.0.0.1", 0))
        port = port_of(server)
        assert server.is_serving()

        server.close()
        loop.run_until_complete(server.wait_closed())

        assert not server.is_serving()
        with socket.socket() as client, pytest.raises(ConnectionRefusedError):
            client.connect(("127.0.0.1", port))
