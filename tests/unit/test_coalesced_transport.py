"""A connection's small writes of one turn of the event loop go out as one, at the turn's end; a
large one is never held, nor is anything once what is held grows large; closing sends what is held
first."""

from __future__ import annotations

import asyncio
from typing import Any

from entrypoints.server import CoalescedTransport

LARGE = CoalescedTransport.HELD_BYTES


class RecordingTransport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False
        self.peer = ("127.0.0.1", 40000)

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, lines: list[bytes]) -> None:
        self.calls.append(("writelines", list(lines)))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def get_extra_info(self, name: str) -> Any:
        return self.peer if name == "peername" else None


def coalesced() -> tuple[CoalescedTransport, RecordingTransport]:
    transport = RecordingTransport()
    return CoalescedTransport(transport, asyncio.get_running_loop()), transport  # type: ignore[arg-type]


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_turn_go_out_together_at_its_end() -> None:
    wrapped, transport = coalesced()

    wrapped.write(b"HTTP/1.1 200 OK\r\n\r\n")
    wrapped.write(b"[]")
    assert transport.calls == []
    await next_turn()

    assert transport.calls == [("writelines", [b"HTTP/1.1 200 OK\r\n\r\n", b"[]"])]


async def test_a_lone_write_goes_out_as_it_is_and_each_turn_has_its_own() -> None:
    wrapped, transport = coalesced()

    wrapped.write(b"one")
    await next_turn()
    wrapped.write(b"two")
    await next_turn()

    assert transport.calls == [("write", b"one"), ("write", b"two")]


async def test_a_large_write_is_not_held() -> None:
    wrapped, transport = coalesced()
    large = b"x" * LARGE

    wrapped.write(large)

    assert transport.calls == [("write", large)]


async def test_what_is_held_goes_out_at_once_when_it_grows_large_and_in_order() -> None:
    wrapped, transport = coalesced()
    head, body = b"head", b"x" * (LARGE - 1)

    wrapped.write(head)
    wrapped.write(body)
    wrapped.write(b"tail")

    assert transport.calls == [("writelines", [head, body])]
    await next_turn()
    assert transport.calls == [("writelines", [head, body]), ("write", b"tail")]


async def test_closing_sends_what_is_held_first_and_nothing_is_written_after() -> None:
    wrapped, transport = coalesced()

    wrapped.write(b"answer")
    wrapped.close()
    wrapped.write(b"late")
    await next_turn()

    assert transport.calls == [("write", b"answer"), ("close", None)]
    assert wrapped.is_closing()


async def test_what_is_held_when_the_connection_went_away_is_dropped() -> None:
    wrapped, transport = coalesced()

    wrapped.write(b"answer")
    transport.closing = True
    await next_turn()

    assert transport.calls == []


async def test_the_rest_of_the_transport_is_the_transports_own() -> None:
    wrapped, transport = coalesced()

    assert wrapped.get_extra_info("peername") == transport.peer
