"""The connection bounds of a real `hexpost serve`, tried with raw sockets as an attacker would:
idle and stalled connections are closed, an oversized head is refused, the open-connection cap
turns connections away, and normal clients are served throughout. Timeouts are short here so that
each test takes about a second."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress

import httpx
import pytest
from pydantic import ValidationError

from entrypoints.settings import Settings, configuration_error
from tests.e2e.helpers import REGISTER
from tests.hexpost_servers import Server, running_server, server_environment

pytestmark = pytest.mark.slow

TIMEOUT_SECONDS = 1.0
MAX_CONNECTIONS = 8
# A bound on waits that only a hang reaches; the timeouts under test are far shorter.
HANG_SECONDS = 15.0
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: hexpost.test\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("limits")
    environment = server_environment(
        directory,
        database_url="memory://",
        HEXPOST_HEADER_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        HEXPOST_BODY_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
    )
    with running_server(directory, environment, migrate=False) as running:
        yield running


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("capped")
    environment = server_environment(
        directory,
        database_url="memory://",
        HEXPOST_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        HEXPOST_KEEP_ALIVE_SECONDS="60",
    )
    with running_server(directory, environment, migrate=False) as running:
        yield running


def _connect(server: Server) -> socket.socket:
    connection = socket.create_connection((server.host, server.port), timeout=HANG_SECONDS)
    connection.settimeout(HANG_SECONDS)
    return connection


def _read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes; a reset after the answer counts as closing."""
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def _status_and_detail(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\nconnection: close" in head.lower(), head
    return int(head.split()[1]), json.loads(body)["detail"]


def _one_answer(connection: socket.socket) -> bytes:
    """One whole response on a kept-alive connection (they carry a Content-Length)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed before an answer: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def _healthy(server: Server) -> bool:
    return httpx.get(f"{server.url}/healthz", timeout=HANG_SECONDS).status_code == 200


def test_a_connection_that_never_sends_a_request_is_closed_after_the_header_timeout(server: Server) -> None:
    with _connect(server) as idle:
        started = time.monotonic()
        answer = _read_until_closed(idle)

    assert answer == b""
    assert time.monotonic() - started < HANG_SECONDS


def test_a_request_head_that_stops_halfway_is_answered_408_and_closed(server: Server) -> None:
    with _connect(server) as stalled:
        stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: hexpost.test\r\n")
        answer = _read_until_closed(stalled)

    assert _status_and_detail(answer) == (408, "Request timeout")


def test_a_body_that_stops_short_of_its_content_length_is_answered_408_and_closed(server: Server) -> None:
    with _connect(server) as stalled:
        stalled.sendall(
            f"POST {REGISTER} HTTP/1.1\r\nHost: hexpost.test\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n".encode()
            + b'{"email": "short@example.com"'
        )
        answer = _read_until_closed(stalled)

    assert _status_and_detail(answer) == (408, "Request timeout")
    assert _healthy(server)


def test_a_64_kib_header_is_answered_431_and_the_server_stays_responsive(server: Server) -> None:
    with _connect(server) as attacker:
        attacker.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: hexpost.test\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
        )
        answer = _read_until_closed(attacker)

    assert _status_and_detail(answer) == (431, "Request header fields too large")
    assert _healthy(server)


def test_a_header_that_never_ends_is_refused_once_past_the_limit_not_buffered(server: Server) -> None:
    with _connect(server) as attacker, _connect(server) as bystander:
        attacker.sendall(b"GET /healthz HTTP/1.1\r\nHost: hexpost.test\r\nX-Endless: ")
        sent = 0
        try:
            # Far more than the 32 KiB limit, in pieces, with no end of the head in sight.
            while sent < 16 * 1024 * 1024:
                attacker.sendall(b"a" * 4096)
                sent += 4096
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_until_closed(attacker)
        bystander.sendall(HEALTHZ)
        served = _one_answer(bystander)

    assert sent < 16 * 1024 * 1024
    assert answer == b"" or _status_and_detail(answer)[0] == 431
    assert served.startswith(b"HTTP/1.1 200 ")


def test_keep_alive_serves_several_requests_on_one_connection_and_a_slow_but_timely_head(
    server: Server,
) -> None:
    with _connect(server) as client:
        client.sendall(HEALTHZ)
        first = _one_answer(client)
        # The second head arrives in two pieces, well within the header timeout.
        client.sendall(HEALTHZ[:10])
        time.sleep(TIMEOUT_SECONDS / 4)
        client.sendall(HEALTHZ[10:])
        second = _one_answer(client)

    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 200 ")


def _served_again(server: Server) -> None:
    """New connections are served once the test's own are gone (the server notices within moments)."""
    deadline = time.monotonic() + HANG_SECONDS
    while True:
        try:
            assert _healthy(server)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_at_the_cap_a_new_client_takes_the_place_of_the_longest_idle_connection(
    capped_server: Server,
) -> None:
    with ExitStack() as stack:
        held = [stack.enter_context(_connect(capped_server)) for _ in range(MAX_CONNECTIONS)]
        for connection in held:
            # An answer proves the server took the connection on (not just the kernel); then it
            # idles, kept alive, waiting for a next request.
            connection.sendall(HEALTHZ)
            assert _one_answer(connection).startswith(b"HTTP/1.1 200 ")

        with _connect(capped_server) as newcomer:
            newcomer.sendall(HEALTHZ)
            assert _one_answer(newcomer).startswith(b"HTTP/1.1 200 ")
        # The server closed one of them (they went idle within the same millisecond or so, so
        # which one is not fixed) before it answered the newcomer.
        closed, _, _ = select.select(held, [], [], HANG_SECONDS)
        assert len(closed) == 1
        assert _read_until_closed(closed[0]) == b""
        for connection in held:
            if connection is not closed[0]:
                connection.sendall(HEALTHZ)
                assert _one_answer(connection).startswith(b"HTTP/1.1 200 ")

    _served_again(capped_server)


def test_when_every_connection_has_a_request_in_hand_one_over_the_cap_is_closed_at_once(
    capped_server: Server,
) -> None:
    # A liveness probe, then a registration whose body never finishes, in one write: when the
    # probe's answer arrives, the server has read the registration's head too.
    busy = (
        HEALTHZ
        + f"POST {REGISTER} HTTP/1.1\r\nHost: hexpost.test\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{".encode()
    )
    with ExitStack() as stack:
        held = [stack.enter_context(_connect(capped_server)) for _ in range(MAX_CONNECTIONS)]
        for connection in held:
            connection.sendall(busy)
            assert _one_answer(connection).startswith(b"HTTP/1.1 200 ")

        with _connect(capped_server) as refused:
            # The server may have closed it before the request goes out.
            with suppress(BrokenPipeError, ConnectionResetError):
                refused.sendall(HEALTHZ)
            answer = _read_until_closed(refused)

    assert answer == b""
    _served_again(capped_server)


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("one-slot")
    environment = server_environment(
        directory, database_url="memory://", HEXPOST_MAX_IN_FLIGHT="1", HEXPOST_MAX_QUEUED="1"
    )
    with running_server(directory, environment, migrate=False) as running:
        yield running


READYZ = b"GET /readyz HTTP/1.1\r\nHost: hexpost.test\r\n\r\n"
# How long an answer that comes at once may take on a busy machine; waiting that long without one
# means the request is queued.
AT_ONCE_SECONDS = 1.0


def _answered_at_once(connection: socket.socket) -> bool:
    readable, _, _ = select.select([connection], [], [], AT_ONCE_SECONDS)
    return bool(readable)


def test_a_full_server_sheds_with_503_at_once_and_a_client_leaving_the_queue_frees_its_place(
    one_slot_server: Server,
) -> None:
    body = json.dumps({"email": "slot@example.com", "password": "a good long password"}).encode()
    with ExitStack() as stack:
        holder, queued, shed = (stack.enter_context(_connect(one_slot_server)) for _ in range(3))
        # A registration whose body is still on its way holds the only slot.
        holder.sendall(
            f"POST {REGISTER} HTTP/1.1\r\nHost: hexpost.test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        deadline = time.monotonic() + HANG_SECONDS
        while True:
            # Until the registration has the slot, a readiness probe is simply answered 200.
            queued.sendall(READYZ)
            if not _answered_at_once(queued):
                break
            assert _one_answer(queued).startswith(b"HTTP/1.1 200 ")
            assert time.monotonic() < deadline
        shed.sendall(READYZ)
        busy = _one_answer(shed)
        liveness = httpx.get(f"{one_slot_server.url}/healthz", timeout=HANG_SECONDS)

        queued.close()
        while True:
            # The server hears of the hang-up within moments; until then the queue is still full.
            newcomer = stack.enter_context(_connect(one_slot_server))
            newcomer.sendall(READYZ)
            if not _answered_at_once(newcomer):
                break
            assert _one_answer(newcomer).startswith(b"HTTP/1.1 503 ")
            assert time.monotonic() < deadline
        holder.sendall(body[5:])
        registered = _one_answer(holder)
        served_in_turn = _one_answer(newcomer)

    assert busy.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nretry-after: 1\r\n" in busy.lower()
    assert busy.endswith(b'{"detail":"Server busy, retry shortly"}')
    assert liveness.status_code == 200
    assert registered.startswith(b"HTTP/1.1 201 ")
    assert served_in_turn.startswith(b"HTTP/1.1 200 ")


OFF = dict.fromkeys(
    (
        "HEXPOST_MAX_IN_FLIGHT",
        "HEXPOST_MAX_QUEUED",
        "HEXPOST_MAX_CONNECTIONS",
        "HEXPOST_MAX_HEADER_BYTES",
        "HEXPOST_HEADER_TIMEOUT_SECONDS",
        "HEXPOST_BODY_TIMEOUT_SECONDS",
    ),
    "off",
)


def test_with_every_limit_off_the_server_serves_and_takes_a_64_kib_header(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    directory = tmp_path_factory.mktemp("unlimited")
    environment = server_environment(directory, database_url="memory://", **OFF)
    with running_server(directory, environment, migrate=False) as unlimited, _connect(unlimited) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: hexpost.test\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n")
        answer = _one_answer(client)

    assert answer.startswith(b"HTTP/1.1 200 ")


def test_off_lifts_a_limit_and_a_bad_value_is_named(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(**{name.removeprefix("HEXPOST_").lower(): "OFF" for name in OFF})
    assert all(getattr(settings, name.removeprefix("HEXPOST_").lower()) is None for name in OFF)

    with pytest.raises(ValidationError) as refused:
        make_settings(max_queued="-1", header_timeout_seconds="soon")
    line = configuration_error(refused.value)
    assert "HEXPOST_MAX_QUEUED: " in line
    assert "HEXPOST_HEADER_TIMEOUT_SECONDS: " in line
