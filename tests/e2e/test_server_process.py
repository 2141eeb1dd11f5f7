"""The canonical API behind a real `hexpost serve` (uvicorn) process on SQLite, after `hexpost migrate`:
what only a socket shows (the body cap while streaming, Expect: 100-continue), and the walkthrough."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import attrs
import httpx
import pytest

from tests.e2e.helpers import ADD_POST, GET_POSTS, LOGIN, PASSWORD, REGISTER, bearer, delete_url
from tests.hexpost_servers import Server, running_server, server_environment

pytestmark = pytest.mark.slow

MAX_BODY_BYTES = 8 * 1024 * 1024  # the default, which this server keeps
OVER_CAP = MAX_BODY_BYTES + 1024 * 1024
# A bound on waits for answers that should come at once: only a hang reaches it.
ANSWER_TIMEOUT_SECONDS = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server process for the module."""
    directory = tmp_path_factory.mktemp("server")
    with running_server(directory, server_environment(directory), migrate=True) as running:
        yield running
    # Nothing any test sent may have made the server fail.
    log = running.log.read_text(errors="replace")
    assert " ERROR " not in log, log


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=ANSWER_TIMEOUT_SECONDS) as client:
        yield client


def _register(http: httpx.Client, email: str) -> dict[str, str]:
    answer = http.post(REGISTER, json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return bearer(answer.json()["access_token"])


# --- raw HTTP/1.1 -------------------------------------------------------------------------------


def _connect(server: Server) -> socket.socket:
    connection = socket.create_connection((server.host, server.port), timeout=ANSWER_TIMEOUT_SECONDS)
    connection.settimeout(ANSWER_TIMEOUT_SECONDS)
    return connection


@attrs.frozen
class RawResponse:
    interim: list[int]
    status: int
    headers: dict[str, str]
    body: bytes


def _read_response(connection: socket.socket) -> RawResponse:
    """One final response, with the status codes of any 1xx responses that came before it."""
    buffer = b""
    interim: list[int] = []
    while True:
        while b"\r\n\r\n" not in buffer:
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed before a whole response: {buffer[:200]!r}")
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        if 100 <= status < 200:
            interim.append(status)
            continue
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            buffer += chunk
        return RawResponse(interim, status, headers, buffer[:length])


def _post_head(path: str, token: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: hexpost.test\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def _token(http: httpx.Client, email: str) -> str:
    return _register(http, email)["Authorization"].removeprefix("Bearer ")


def test_an_announced_body_over_the_cap_is_413_before_any_of_it_is_sent(
    server: Server, http: httpx.Client
) -> None:
    token = _token(http, "announced@example.com")
    with _connect(server) as connection:
        # Only the head goes out: an answer can only come if the server does not wait for the body.
        connection.sendall(_post_head(ADD_POST, token, f"Content-Length: {OVER_CAP}\r\n"))
        answer = _read_response(connection)

    assert answer.status == 413
    assert answer.headers["content-type"].startswith("application/json")
    assert json.loads(answer.body) == {"detail": "Request body too large"}


def test_an_announced_body_over_the_cap_with_expect_100_continue_gets_413_and_no_100_continue(
    server: Server, http: httpx.Client
) -> None:
    token = _token(http, "expect@example.com")
    with _connect(server) as connection:
        connection.sendall(
            _post_head(ADD_POST, token, f"Content-Length: {OVER_CAP}\r\nExpect: 100-continue\r\n")
        )
        answer = _read_response(connection)

    assert answer.interim == []
    assert answer.status == 413
    assert json.loads(answer.body) == {"detail": "Request body too large"}


def test_a_body_under_the_cap_with_expect_100_continue_is_invited_and_accepted(
    server: Server, http: httpx.Client
) -> None:
    token = _token(http, "invited@example.com")
    body = json.dumps({"text": "invited"}).encode()
    with _connect(server) as connection:
        connection.sendall(
            _post_head(ADD_POST, token, f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n")
        )
        # The server asks for the body once the app reads it; then the answer follows.
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += connection.recv(1)
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        connection.sendall(body)
        answer = _read_response(connection)

    assert answer.status == 200
    assert json.loads(answer.body)["detail"] == "Post created"


def test_a_client_that_sends_a_whole_announced_oversized_body_receives_the_413(http: httpx.Client) -> None:
    auth = _register(http, "whole@example.com")

    answer = http.post(
        ADD_POST, content=b"x" * OVER_CAP, headers={**auth, "Content-Type": "application/json"}
    )

    assert answer.status_code == 413
    assert answer.json() == {"detail": "Request body too large"}
    assert http.get(GET_POSTS, headers=auth).json() == []


def test_a_chunked_body_over_the_cap_gets_a_413_the_client_receives(http: httpx.Client) -> None:
    auth = _register(http, "chunked@example.com")

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(OVER_CAP // 65536):
            yield b"x" * 65536
        yield b'"}'

    answer = http.post(ADD_POST, content=chunks(), headers={**auth, "Content-Type": "application/json"})

    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413
    assert answer.json() == {"detail": "Request body too large"}
    assert http.get(GET_POSTS, headers=auth).json() == []


def test_a_raw_chunked_body_over_the_cap_is_answered_413_not_reset(
    server: Server, http: httpx.Client
) -> None:
    token = _token(http, "rawchunked@example.com")
    chunk = b"y" * 65536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with _connect(server) as connection:
        connection.sendall(_post_head(ADD_POST, token, "Transfer-Encoding: chunked\r\n"))
        connection.sendall(b'a\r\n{"text": "\r\n')
        for _ in range(OVER_CAP // len(chunk)):
            connection.sendall(framed)
        connection.sendall(b'2\r\n"}\r\n0\r\n\r\n')
        answer = _read_response(connection)

    assert answer.status == 413
    assert json.loads(answer.body) == {"detail": "Request body too large"}


def test_a_chunked_body_under_the_cap_is_read_whole(http: httpx.Client) -> None:
    auth = _register(http, "smallchunks@example.com")

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        yield b"z" * 100_000
        yield b'"}'

    answer = http.post(ADD_POST, content=chunks(), headers={**auth, "Content-Type": "application/json"})

    assert answer.status_code == 200
    assert [post["text"] for post in http.get(GET_POSTS, headers=auth).json()] == ["z" * 100_000]


def test_the_server_keeps_serving_after_oversized_bodies(http: httpx.Client) -> None:
    auth = _register(http, "after@example.com")

    assert http.get(GET_POSTS, headers=auth).status_code == 200


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /api/v1/posts/add-post HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /api/v1/users/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"DELETE /api/v1/posts/delete-post/" + b"9" * 60_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v1/posts/get-posts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
    ],
    ids=["garbage", "bad-content-length", "bad-chunk", "long-id", "binary-token"],
)
def test_malformed_http_is_a_4xx_never_a_5xx(server: Server, request_bytes: bytes) -> None:
    with _connect(server) as connection:
        connection.sendall(request_bytes)
        answer = _read_response(connection)

    assert 400 <= answer.status < 500


# --- the walkthrough ----------------------------------------------------------------------------


def test_walkthrough_register_login_add_list_twice_delete(http: httpx.Client) -> None:
    registered = http.post(REGISTER, json={"email": "  Walker@Example.com ", "password": PASSWORD})
    assert registered.status_code == 201
    assert registered.json()["email"] == "walker@example.com"

    login = http.post(LOGIN, data={"username": "WALKER@example.com", "password": PASSWORD})
    assert login.status_code == 200
    auth = bearer(login.json()["access_token"])

    ids = []
    for text in ("first", "second"):
        added = http.post(ADD_POST, json={"text": text}, headers=auth)
        assert added.status_code == 200
        ids.append(added.json()["PostID"])

    first = http.get(GET_POSTS, headers=auth)
    second = http.get(GET_POSTS, headers=auth)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content
    assert [(post["id"], post["text"]) for post in first.json()] == list(
        zip(ids, ["first", "second"], strict=True)
    )

    deleted = http.delete(delete_url(ids[0]), headers=auth)
    assert (deleted.status_code, deleted.content) == (204, b"")
    after = http.get(GET_POSTS, headers=auth)
    assert after.headers["x-cache"] == "miss"
    assert [post["text"] for post in after.json()] == ["second"]


def test_a_1_mib_text_of_emoji_round_trips_byte_identical_through_sqlite(http: httpx.Client) -> None:
    auth = _register(http, "emoji@example.com")
    text = "😀" * (1_048_576 // 4)
    assert len(text.encode()) == 1_048_576

    added = http.post(ADD_POST, json={"text": text}, headers=auth)
    listed = http.get(GET_POSTS, headers=auth)

    assert added.status_code == 200
    assert listed.json()[0]["text"] == text
    assert text.encode() in listed.content


def test_someone_elses_post_survives_their_delete_across_the_wire(http: httpx.Client) -> None:
    owner = _register(http, "owner@example.com")
    other = _register(http, "other@example.com")
    post_id = http.post(ADD_POST, json={"text": "mine"}, headers=owner).json()["PostID"]

    answer = http.delete(delete_url(post_id), headers=other)

    assert (answer.status_code, answer.json()) == (404, {"detail": "Post not found"})
    assert [post["text"] for post in http.get(GET_POSTS, headers=owner).json()] == ["mine"]


def test_a_token_survives_a_second_login_and_bad_tokens_get_a_bearer_challenge(http: httpx.Client) -> None:
    auth = _register(http, "tokens@example.com")

    again = http.post(LOGIN, json={"email": "tokens@example.com", "password": PASSWORD})
    rejected = http.get(GET_POSTS, headers={"Authorization": "Bearer not.a.token"})

    assert again.status_code == 200
    assert http.get(GET_POSTS, headers=auth).status_code == 200
    assert rejected.status_code == 401
    assert rejected.headers["www-authenticate"] == "Bearer"
