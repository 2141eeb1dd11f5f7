"""Every kind of bad input of contract section 1, on the canonical API: the right 4xx, never a 5xx."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from dependency_injector import providers
from starlette.types import Message

from adapters.clock import SystemClock
from adapters.tokens import AUDIENCE, ISSUER, JwtTokenService
from entrypoints.container import Container, close
from entrypoints.http.app import create_app
from tests.conftest import SECRET
from tests.e2e.helpers import (
    ADD_POST,
    GET_POSTS,
    LOGIN,
    PASSWORD,
    REGISTER,
    Account,
    add_post,
    assert_detail,
    assert_json,
    assert_unauthenticated,
    assert_validation_error,
    bearer,
    delete_url,
    register,
    texts,
    unique_email,
)
from tests.http_client import in_process_client
from tests.unit.fakes import FixedClock

JSON_ROUTES = [REGISTER, LOGIN, ADD_POST]


@pytest.fixture
async def account(client: httpx.AsyncClient) -> Account:
    return await register(client)


async def post_raw(
    client: httpx.AsyncClient, url: str, body: bytes, account: Account, content_type: str | None
) -> httpx.Response:
    headers = dict(account.auth)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await client.post(url, content=body, headers=headers)


# --- 415 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/json-patch+json", "text/json", "application/jsonx"],
)
@pytest.mark.parametrize("url", JSON_ROUTES)
async def test_a_body_of_another_content_type_is_415(
    client: httpx.AsyncClient, account: Account, url: str, content_type: str
) -> None:
    body = json.dumps({"email": unique_email(), "password": PASSWORD, "text": "x"}).encode()

    answer = await post_raw(client, url, body, account, content_type)

    assert_detail(answer, 415)


@pytest.mark.parametrize("url", [REGISTER, ADD_POST])
async def test_a_form_sent_to_a_json_only_route_is_415(
    client: httpx.AsyncClient, account: Account, url: str
) -> None:
    answer = await client.post(
        url, data={"email": unique_email(), "password": PASSWORD, "text": "x"}, headers=account.auth
    )

    assert_detail(answer, 415)


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "application/json; charset=utf-8", "APPLICATION/JSON"]
)
async def test_json_is_accepted_with_or_without_a_content_type_and_charset(
    client: httpx.AsyncClient, account: Account, content_type: str | None
) -> None:
    answer = await post_raw(client, ADD_POST, b'{"text": "typed"}', account, content_type)

    assert answer.status_code == 200


# --- 422 ----------------------------------------------------------------------------------------

MALFORMED_BODIES = {
    "empty": b"",
    "whitespace": b"  \n ",
    "truncated": b'{"text": "x"',
    "not-json": b"text=hello",
    "single-quotes": b"{'text': 'x'}",
    "trailing-comma": b'{"text": "x",}',
    "array": b'["text"]',
    "string": b'"text"',
    "number": b"42",
    "null": b"null",
    "nan": b"NaN",
    "deeply-nested-array": b"[" * 100_000 + b"]" * 100_000,
    "deeply-nested-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "deeply-nested-field": b'{"text": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "unclosed-nesting": b"[" * 100_000,
    "lone-high-surrogate": (
        b'{"email": "\\ud800@example.com", "password": "\\ud800passwrd", "text": "\\ud800"}'
    ),
    "lone-low-surrogate": (
        b'{"email": "\\udc00@example.com", "password": "\\udc00passwrd", "text": "\\udc00"}'
    ),
    "reversed-surrogates": (
        b'{"text": "\\ude00\\ud83d", "email": "a@example.com", "password": "\\ude00\\ud83dxxxxxx"}'
    ),
    "invalid-utf8": b'{"text": "\xff\xfe", "email": "\xc3@example.com", "password": "\xed\xa0\x80xxxxxxx"}',
    "utf8-bom": b'\xef\xbb\xbf{"text": "x"}',
    "utf16": '{"text": "x"}'.encode("utf-16"),
    "huge-integer": b'{"text": ' + b"9" * 100_000 + b', "email": 1, "password": 2}',
    "huge-negative-integer": b'{"text": -' + b"9" * 5_000 + b"}",
    "huge-exponent": b'{"text": 1e999999, "email": 1e999999, "password": -1e999999}',
    "nul-byte": b'{"text": "x"}\x00',
    "two-documents": b'{"text": "x"} {"text": "y"}',
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
@pytest.mark.parametrize("url", JSON_ROUTES)
async def test_a_malformed_or_mistyped_body_is_422_in_fastapis_shape(
    client: httpx.AsyncClient, account: Account, url: str, body: bytes
) -> None:
    answer = await post_raw(client, url, body, account, "application/json")

    assert_validation_error(answer)


WRONG_TYPES: list[Any] = [None, 1, 1.5, True, [], ["x"], {}, {"x": "y"}, 10**30]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
@pytest.mark.parametrize(("url", "field"), [(REGISTER, "email"), (REGISTER, "password"), (LOGIN, "email")])
async def test_a_non_string_credential_is_422_naming_the_field(
    client: httpx.AsyncClient, url: str, field: str, value: Any
) -> None:
    body = {"email": unique_email(), "password": PASSWORD, field: value}

    answer = await client.post(url, json=body)

    assert_validation_error(answer, ["body", field])


@pytest.mark.parametrize("value", [*WRONG_TYPES, ""], ids=repr)
async def test_an_empty_or_non_string_text_is_422_naming_the_field(
    client: httpx.AsyncClient, account: Account, value: Any
) -> None:
    answer = await client.post(ADD_POST, json={"text": value}, headers=account.auth)

    assert_validation_error(answer, ["body", "text"])
    assert await texts(client, account) == []


@pytest.mark.parametrize(
    ("url", "body", "missing"),
    [
        (REGISTER, {"password": PASSWORD}, "email"),
        (REGISTER, {"email": "x@example.com"}, "password"),
        (LOGIN, {"password": PASSWORD}, "email"),
        (LOGIN, {"email": "x@example.com"}, "password"),
        (ADD_POST, {"Text": "wrong case"}, "text"),
        (ADD_POST, {}, "text"),
    ],
)
async def test_a_missing_field_is_422_of_type_missing(
    client: httpx.AsyncClient, account: Account, url: str, body: dict[str, str], missing: str
) -> None:
    answer = await client.post(url, json=body, headers=account.auth)

    assert_validation_error(answer, ["body", missing])
    assert {item["type"] for item in answer.json()["detail"]} == {"missing"}


@pytest.mark.parametrize("fields", [{"password": PASSWORD}, {"username": "x@example.com"}, {"other": "x"}])
async def test_a_login_form_missing_a_field_is_422(client: httpx.AsyncClient, fields: dict[str, str]) -> None:
    answer = await client.post(LOGIN, data=fields)

    assert_validation_error(answer)
    for name in {"username", "password"} - set(fields):
        assert ["body", name] in [item["loc"] for item in answer.json()["detail"]]


async def test_a_login_form_with_a_file_instead_of_a_field_is_422(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        LOGIN, files={"username": ("name.txt", b"x@example.com"), "password": (None, PASSWORD)}
    )

    assert_validation_error(answer, ["body", "username"])


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "plainaddress",
        "@example.com",
        "user@",
        "user@@example.com",
        "user@example",
        "user name@example.com",
        "user@exa mple.com",
        "x@" + "a" * 320 + ".com",
        "user@example.com\x00",
        "<script>@example.com",
    ],
    ids=lambda email: repr(email[:30]),
)
async def test_register_with_an_invalid_email_is_422_naming_the_email(
    client: httpx.AsyncClient, email: str
) -> None:
    answer = await client.post(REGISTER, json={"email": email, "password": PASSWORD})

    assert_validation_error(answer, ["body", "email"])


async def test_an_email_over_320_characters_is_422_even_when_otherwise_valid(
    client: httpx.AsyncClient,
) -> None:
    email = "a" * 64 + "@" + ".".join(["b" * 63] * 4) + ".com"
    assert len(email) > 320

    answer = await client.post(REGISTER, json={"email": email, "password": PASSWORD})

    assert_validation_error(answer, ["body", "email"])


async def test_an_email_of_320_characters_after_trimming_is_not_rejected_for_its_length(
    client: httpx.AsyncClient,
) -> None:
    # Spaces around a valid address are trimmed before it is measured.
    email = "   valid@example.com   "

    answer = await client.post(REGISTER, json={"email": email, "password": PASSWORD})

    assert answer.status_code == 201


@pytest.mark.parametrize("password", ["", "1234567", " " * 7, "p" * 129, "😀" * 129])
async def test_register_with_a_password_outside_8_to_128_characters_is_422(
    client: httpx.AsyncClient, password: str
) -> None:
    answer = await client.post(REGISTER, json={"email": unique_email(), "password": password})

    assert_validation_error(answer, ["body", "password"])


async def test_a_login_with_an_invalid_email_is_422_at_the_email(client: httpx.AsyncClient) -> None:
    answer = await client.post(LOGIN, json={"email": "not an email", "password": PASSWORD})

    assert_validation_error(answer, ["body", "email"])


# --- 401 ----------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(header: dict[str, Any], payload: Any, secret: str = SECRET, digest: str = "sha256") -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(user_id: int, session: str, **overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    values: dict[str, Any] = {
        "sub": str(user_id),
        "sid": session,
        "iat": now,
        "exp": now + 600,
        "jti": "j",
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


@pytest.fixture
async def signing_client(make_container: Callable[..., Container]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose tokens are signed with the known test SECRET, so that the tests can
    forge every other kind of token. (memory:// otherwise signs with a key of its own.)"""
    container = make_container()
    container.tokens.override(
        providers.Singleton(JwtTokenService, secret=SECRET, ttl_seconds=1800, clock=SystemClock())
    )
    async with in_process_client(container) as http:
        yield http


def session_of(account: Account) -> str:
    sid: str = jwt.decode(account.token, options={"verify_signature": False})["sid"]
    return sid


def bad_tokens(user_id: int, sid: str) -> dict[str, str]:
    """Every kind of bad token for the account `user_id` in its session `sid`, by name."""
    good = _token({"alg": "HS256", "typ": "JWT"}, _claims(user_id, sid))
    header, payload, signature = good.split(".")
    other_claims = _b64(json.dumps(_claims(user_id + 1, sid)).encode())
    expired_at = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    return {
        "malformed": "not-a-jwt",
        "two-segments": f"{header}.{payload}",
        "four-segments": f"{good}.x",
        "empty-segments": "..",
        "non-base64": "%%%.%%%.%%%",
        "huge": "a" * 50_000,
        "tampered-payload": f"{header}.{other_claims}.{signature}",
        "tampered-signature": f"{header}.{payload}.{signature[::-1]}",
        "stripped-signature": f"{header}.{payload}.",
        "other-secret": _token({"alg": "HS256"}, _claims(user_id, sid), secret="x" * 40),
        "alg-none": _b64(json.dumps({"alg": "none"}).encode()) + f".{payload}.",
        "alg-None": _b64(json.dumps({"alg": "None"}).encode()) + f".{payload}.",
        "alg-HS512": _token({"alg": "HS512"}, _claims(user_id, sid), digest="sha512"),
        "alg-HS384": _token({"alg": "HS384"}, _claims(user_id, sid), digest="sha384"),
        "alg-RS256": _token({"alg": "RS256"}, _claims(user_id, sid)),
        "alg-ES256": _token({"alg": "ES256"}, _claims(user_id, sid)),
        "alg-missing": _token({"typ": "JWT"}, _claims(user_id, sid)),
        "header-not-object": f"{_b64(b'[]')}.{payload}.{signature}",
        "payload-not-object": _token({"alg": "HS256"}, [str(user_id)]),
        "expired": _token({"alg": "HS256"}, _claims(user_id, sid, exp=expired_at, iat=expired_at - 600)),
        "wrong-audience": _token({"alg": "HS256"}, _claims(user_id, sid, aud="another-service")),
        "no-audience": _token({"alg": "HS256"}, _claims(user_id, sid, aud=None)),
        "wrong-issuer": _token({"alg": "HS256"}, _claims(user_id, sid, iss="another-issuer")),
        "no-issuer": _token({"alg": "HS256"}, _claims(user_id, sid, iss=None)),
        "no-exp": _token({"alg": "HS256"}, _claims(user_id, sid, exp=None)),
        "no-iat": _token({"alg": "HS256"}, _claims(user_id, sid, iat=None)),
        "no-sub": _token({"alg": "HS256"}, _claims(user_id, sid, sub=None)),
        "non-numeric-sub": _token({"alg": "HS256"}, _claims(user_id, sid, sub="alice")),
        "integer-sub": _token({"alg": "HS256"}, _claims(user_id, sid, sub=user_id)),
        "negative-sub": _token({"alg": "HS256"}, _claims(user_id, sid, sub="-1")),
        "huge-sub": _token({"alg": "HS256"}, _claims(user_id, sid, sub="9" * 400)),
        "non-numeric-exp": _token({"alg": "HS256"}, _claims(user_id, sid, exp="never")),
        "no-sid": _token({"alg": "HS256"}, _claims(user_id, sid, sid=None)),
        "integer-sid": _token({"alg": "HS256"}, _claims(user_id, sid, sid=7)),
        "unknown-sid": _token({"alg": "HS256"}, _claims(user_id, "no-such-session")),
        "other-users-sid": _token({"alg": "HS256"}, _claims(user_id + 1, sid)),
    }


BAD_TOKEN_NAMES = list(bad_tokens(1, "s"))


async def test_the_forged_tokens_are_built_right(signing_client: httpx.AsyncClient) -> None:
    # The control for the forgeries below: the same builder, every claim right, is accepted.
    account = await register(signing_client)
    token = _token({"alg": "HS256", "typ": "JWT"}, _claims(account.id, session_of(account)))

    answer = await signing_client.get(GET_POSTS, headers=bearer(token))

    assert answer.status_code == 200


@pytest.mark.parametrize("kind", BAD_TOKEN_NAMES)
async def test_every_kind_of_bad_token_is_401_with_a_bearer_challenge_on_every_post_route(
    signing_client: httpx.AsyncClient, kind: str
) -> None:
    account = await register(signing_client)
    post_id = await add_post(signing_client, account, "kept")
    auth = bearer(bad_tokens(account.id, session_of(account))[kind])

    answers = [
        await signing_client.post(ADD_POST, json={"text": "forged"}, headers=auth),
        await signing_client.get(GET_POSTS, headers=auth),
        await signing_client.delete(delete_url(post_id), headers=auth),
    ]

    for answer in answers:
        assert_unauthenticated(answer)
    assert await texts(signing_client, account) == ["kept"]


async def test_an_expired_token_issued_by_the_service_is_401(
    make_container: Callable[..., Container],
) -> None:
    container = make_container()
    container.clock.override(providers.Object(FixedClock(datetime.now(UTC) - timedelta(hours=2))))
    async with in_process_client(container) as http:
        account = await register(http)
        answer = await http.get(GET_POSTS, headers=account.auth)

    assert_unauthenticated(answer)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwYXNz", "Token abc", "abc", "Bearer: x"],
    ids=repr,
)
@pytest.mark.parametrize("route", ["add", "get", "delete"])
async def test_a_missing_or_malformed_authorization_header_is_401(
    client: httpx.AsyncClient, route: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    if route == "add":
        answer = await client.post(ADD_POST, json={"text": "x"}, headers=headers)
    elif route == "get":
        answer = await client.get(GET_POSTS, headers=headers)
    else:
        answer = await client.delete(delete_url(1), headers=headers)

    assert_unauthenticated(answer)


async def test_a_token_in_the_query_string_is_not_accepted(
    client: httpx.AsyncClient, account: Account
) -> None:
    answer = await client.get(GET_POSTS, params={"token": account.token, "access_token": account.token})

    assert_unauthenticated(answer)


async def test_a_token_of_another_server_instance_is_401(
    client: httpx.AsyncClient, make_container: Callable[..., Container]
) -> None:
    other = make_container()
    try:
        token = other.tokens().issue(1, "no-such-session").value
    finally:
        await close(other)
    await register(client)

    assert_unauthenticated(await client.get(GET_POSTS, headers=bearer(token)))


async def test_a_token_in_a_latin1_header_is_401(client: httpx.AsyncClient) -> None:
    answer = await client.get(GET_POSTS, headers=[(b"Authorization", b"Bearer \xe9\xff.\xe9.\xe9")])

    assert_unauthenticated(answer)


async def test_authentication_is_checked_before_the_body(client: httpx.AsyncClient) -> None:
    answer = await client.post(ADD_POST, content=b"{not json", headers={"Content-Type": "text/plain"})

    assert_unauthenticated(answer)


# --- 404, 405 and odd post ids ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/nope", "/api/v1/", "/api/v1/posts", "/api/v2/posts/get-posts"])
async def test_an_unknown_path_is_404_as_json(client: httpx.AsyncClient, path: str) -> None:
    assert_detail(await client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", REGISTER),
        ("PUT", LOGIN),
        ("GET", ADD_POST),
        ("POST", GET_POSTS),
        ("DELETE", GET_POSTS),
        ("GET", delete_url(1)),
        ("POST", delete_url(1)),
    ],
)
async def test_a_wrong_method_is_405_as_json(client: httpx.AsyncClient, method: str, url: str) -> None:
    answer = await client.request(method, url)

    assert_detail(answer, 405)
    assert answer.headers["allow"]


ODD_POST_IDS = [
    "abc",
    "1.5",
    "1e3",
    "0x10",
    "-1",
    "0",
    "+1",
    "%201",
    "1%20",
    "%00",
    "%FF",
    "%C3%A9",
    "١٢٣",
    "\uff11\uff12",  # fullwidth digits
    "²",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "9" * 100,
    "9" * 5_000,
    "1" + "0" * 50_000,
    "null",
    "undefined",
    "NaN",
    "Infinity",
    "%2e%2e",
    "1;DROP TABLE posts",
]


@pytest.mark.parametrize("post_id", ODD_POST_IDS, ids=lambda post_id: repr(post_id[:24]))
async def test_an_odd_post_id_of_any_length_is_404_or_422_never_5xx(
    client: httpx.AsyncClient, account: Account, post_id: str
) -> None:
    # Post 1 exists, but is someone else's: no spelling of any id may reach it.
    owner = await register(client)
    assert await add_post(client, owner, "survives") == 1

    answer = await client.delete(delete_url(post_id), headers=account.auth)

    assert answer.status_code in (404, 422), answer.text[:200]
    if answer.status_code == 404:
        assert_detail(answer, 404, "Post not found")
    else:
        assert_validation_error(answer, ["path", "post_id"])
    assert await texts(client, owner) == ["survives"]


# --- 413: the request body cap, in process ------------------------------------------------------


@pytest.fixture
async def capped_client(make_container: Callable[..., Container]) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_client(make_container(max_body_bytes=4096, max_post_bytes=1024)) as http:
        yield http


@pytest.mark.parametrize("url", JSON_ROUTES)
async def test_a_body_over_the_cap_with_a_content_length_is_413(
    capped_client: httpx.AsyncClient, url: str
) -> None:
    account = await register(capped_client)
    body = json.dumps({"email": unique_email(), "password": PASSWORD, "text": "x" * 5000}).encode()

    answer = await capped_client.post(
        url, content=body, headers={**account.auth, "Content-Type": "application/json"}
    )

    assert_detail(answer, 413)
    assert await texts(capped_client, account) == []


@pytest.mark.parametrize("url", JSON_ROUTES)
async def test_a_chunked_body_over_the_cap_is_413(capped_client: httpx.AsyncClient, url: str) -> None:
    account = await register(capped_client)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    answer = await capped_client.post(
        url, content=chunks(), headers={**account.auth, "Content-Type": "application/json"}
    )

    assert "content-length" not in answer.request.headers
    assert_detail(answer, 413)
    assert await texts(capped_client, account) == []


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data; boundary=b", "application/x-www-form-urlencoded"]
)
@pytest.mark.parametrize("chunked", [True, False])
async def test_a_login_form_over_the_cap_is_413(
    capped_client: httpx.AsyncClient, content_type: str, chunked: bool
) -> None:
    if content_type.startswith("multipart"):
        parts = [
            b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\n',
            b"u" * 5000,
            b"\r\n--b--\r\n",
        ]
    else:
        parts = [b"username=", b"u" * 5000, b"&password=x"]

    async def chunks() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    body = chunks() if chunked else b"".join(parts)
    answer = await capped_client.post(LOGIN, content=body, headers={"Content-Type": content_type})

    assert_detail(answer, 413)


async def test_a_chunked_body_under_the_cap_is_read_whole(capped_client: httpx.AsyncClient) -> None:
    account = await register(capped_client)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(3):
            yield b"y" * 300
        yield b'"}'

    answer = await capped_client.post(
        ADD_POST, content=chunks(), headers={**account.auth, "Content-Type": "application/json"}
    )

    assert answer.status_code == 200
    assert await texts(capped_client, account) == ["y" * 900]


async def test_a_text_over_a_configured_post_limit_is_413_naming_that_limit(
    capped_client: httpx.AsyncClient,
) -> None:
    account = await register(capped_client)

    answer = await capped_client.post(ADD_POST, json={"text": "z" * 1025}, headers=account.auth)

    assert_detail(answer, 413, "Text exceeds 1024 bytes size limit")


async def test_a_lying_small_content_length_does_not_let_a_big_body_through(
    capped_client: httpx.AsyncClient,
) -> None:
    account = await register(capped_client)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "' + b"x" * 8000 + b'"}'

    answer = await capped_client.post(
        ADD_POST,
        content=chunks(),
        headers={**account.auth, "Content-Type": "application/json", "Content-Length": "10"},
    )

    assert answer.status_code in (400, 413, 422)
    assert await texts(capped_client, account) == []


@pytest.mark.parametrize("length", ["abc", "-1", "1e9", ""])
async def test_a_garbled_content_length_is_not_a_5xx(capped_client: httpx.AsyncClient, length: str) -> None:
    account = await register(capped_client)

    answer = await capped_client.post(
        ADD_POST,
        content=b'{"text": "x"}',
        headers={**account.auth, "Content-Type": "application/json", "Content-Length": length},
    )

    assert answer.status_code < 500


# --- no input gives a 5xx -----------------------------------------------------------------------

FUZZ_BODIES = [
    *MALFORMED_BODIES.values(),
    b'{"email": "a@b.co", "password": "' + b"p" * 100_000 + b'"}',
    b'{"email": "' + b"e" * 100_000 + b'@example.com", "password": "password"}',
    b'{"username": "x", "password": "y"}',
    b'{"text": "'
    + b"\\u0000" * 1000
    + b'", "email": "\\u0000@x.com", "password": "\\u0000\\u0000\\u0000\\u0000"}',
    b'{"text": {"$ne": null}, "email": {"$gt": ""}, "password": {"$gt": ""}}',
    b"username=a&password=b",
    b'--boundary\r\nContent-Disposition: form-data; name="username"\r\n\r\nx\r\n--boundary--',
    b"--broken",
    b"\x00" * 1000,
]
FUZZ_TYPES = [
    None,
    "application/json",
    "application/json; charset=latin-1",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=boundary",
    "multipart/form-data; boundary=",
    "text/plain",
    ";;;",
    "application/json; charset",
]


@pytest.mark.parametrize("content_type", FUZZ_TYPES, ids=repr)
@pytest.mark.parametrize("url", JSON_ROUTES)
async def test_no_fuzzed_body_or_content_type_produces_a_5xx(
    client: httpx.AsyncClient, account: Account, url: str, content_type: str | None
) -> None:
    for body in FUZZ_BODIES:
        answer = await post_raw(client, url, body, account, content_type)
        assert answer.status_code < 500, (body[:40], answer.status_code, answer.text[:200])
        assert_json(answer)


async def test_a_register_storm_of_the_same_email_creates_one_account(client: httpx.AsyncClient) -> None:
    email = unique_email()
    answers = await asyncio.gather(
        *[client.post(REGISTER, json={"email": email, "password": PASSWORD}) for _ in range(10)]
    )

    assert sorted(answer.status_code for answer in answers) == [201] + [400] * 9


@pytest.mark.parametrize(
    ("url", "content_type"),
    [(REGISTER, b"application/json"), (LOGIN, b"application/x-www-form-urlencoded"), (ADD_POST, None)],
)
async def test_a_client_hanging_up_mid_body_is_not_a_server_error(
    container: Container, caplog: pytest.LogCaptureFixture, url: str, content_type: bytes | None
) -> None:
    app = create_app(container)
    # A real caller, so that add-post gets as far as reading the body.
    registered = await container.register_user().execute("hangs-up@example.com", PASSWORD, "127.0.0.1")
    assert registered.signed_in is not None
    token = registered.signed_in.access.value
    headers = [(b"host", b"hexpost.test"), (b"authorization", f"Bearer {token}".encode())]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("hexpost.test", 80),
    }
    incoming: list[Message] = [
        {"type": "http.request", "body": b'{"email": "half', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)

    statuses = [message["status"] for message in sent if message["type"] == "http.response.start"]
    assert statuses == [400]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
