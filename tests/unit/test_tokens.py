from __future__ import annotations

import base64
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from adapters.tokens import ALGORITHM, AUDIENCE, ISSUER, JwtTokenService
from application.ports import TokenSubject
from domain.errors import NotAuthenticated
from domain.ports import MAX_ID
from tests.unit.fakes import FixedClock

SECRET = "unit-test-secret-that-is-at-least-32-bytes"
OTHER_SECRET = "another-secret-that-is-at-least-32-bytes!"
TTL = 1800
SID = "a-session"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    header: dict[str, Any],
    payload: Any,
    secret: str = SECRET,
    signature: str | None = None,
    digest: str = "sha256",
) -> str:
    """A token built by hand, HMAC-signed with `secret` over whatever header and payload it is given."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if signature is None:
        signature = _b64(hmac.new(secret.encode(), signing_input.encode(), digest).digest())
    return f"{signing_input}.{signature}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    values: dict[str, Any] = {
        "sub": "7",
        "sid": SID,
        "iat": now,
        "exp": now + TTL,
        "jti": "abc",
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


@pytest.fixture
def service() -> JwtTokenService:
    return JwtTokenService(SECRET, TTL, FixedClock(datetime.now(UTC)))


def test_an_issued_token_verifies_to_its_user(service: JwtTokenService) -> None:
    token = service.issue(42, SID)

    assert service.verify(token.value) == TokenSubject(42, SID)
    assert token.expires_in == TTL


def test_an_issued_token_carries_the_contracts_claims(service: JwtTokenService) -> None:
    token = service.issue(42, SID)

    header = jwt.get_unverified_header(token.value)
    body = jwt.decode(token.value, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert body["sub"] == "42"
    assert body["sid"] == SID
    assert body["exp"] - body["iat"] == TTL
    assert (body["iss"], body["aud"]) == (ISSUER, AUDIENCE)
    assert body["jti"]


def test_every_issued_token_has_its_own_jti(service: JwtTokenService) -> None:
    first, second = service.issue(1, SID), service.issue(1, SID)

    jtis = {jwt.decode(t.value, options={"verify_signature": False})["jti"] for t in (first, second)}
    assert len(jtis) == 2


def test_the_token_value_is_not_in_its_repr(service: JwtTokenService) -> None:
    token = service.issue(1, SID)

    assert token.value not in repr(token)


def test_a_hand_built_token_with_every_claim_verifies(service: JwtTokenService) -> None:
    # Guards the forgeries below: they fail for what they change, not for how they are built.
    assert service.verify(forge({"alg": "HS256", "typ": "JWT"}, claims())) == TokenSubject(7, SID)


def test_an_expired_token_is_rejected() -> None:
    past = FixedClock(datetime.now(UTC) - timedelta(seconds=TTL + 60))
    token = JwtTokenService(SECRET, TTL, past).issue(1, SID)

    with pytest.raises(NotAuthenticated, match="expired"):
        JwtTokenService(SECRET, TTL, FixedClock()).verify(token.value)


def test_a_token_signed_with_another_secret_is_rejected(service: JwtTokenService) -> None:
    token = JwtTokenService(OTHER_SECRET, TTL, FixedClock(datetime.now(UTC))).issue(1, SID)

    with pytest.raises(NotAuthenticated):
        service.verify(token.value)


def test_a_tampered_payload_is_rejected(service: JwtTokenService) -> None:
    header, _, signature = service.issue(1, SID).value.split(".")
    payload = _b64(json.dumps(claims(sub="2")).encode())

    with pytest.raises(NotAuthenticated):
        service.verify(f"{header}.{payload}.{signature}")


def test_a_tampered_signature_is_rejected(service: JwtTokenService) -> None:
    value = service.issue(1, SID).value
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]

    with pytest.raises(NotAuthenticated):
        service.verify(flipped)


def test_an_unsigned_alg_none_token_is_rejected(service: JwtTokenService) -> None:
    with pytest.raises(NotAuthenticated):
        service.verify(forge({"alg": "none"}, claims(), signature=""))


@pytest.mark.parametrize(("algorithm", "digest"), [("HS384", "sha384"), ("HS512", "sha512")])
def test_a_token_with_another_hmac_algorithm_and_the_right_secret_is_rejected(
    service: JwtTokenService, algorithm: str, digest: str
) -> None:
    token = forge({"alg": algorithm}, claims(), digest=digest)

    with pytest.raises(NotAuthenticated):
        service.verify(token)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "PS256", "EdDSA"])
def test_a_token_claiming_an_asymmetric_algorithm_is_rejected(
    service: JwtTokenService, algorithm: str
) -> None:
    # Signed with the secret as if it were an HMAC key: the classic algorithm-confusion forgery.
    with pytest.raises(NotAuthenticated):
        service.verify(forge({"alg": algorithm}, claims()))


@pytest.mark.parametrize(
    "changed",
    [
        {"aud": "someone-else"},
        {"aud": None},
        {"iss": "someone-else"},
        {"iss": None},
        {"exp": None},
        {"iat": None},
        {"sub": None},
        {"sid": None},
        {"sid": ""},
        {"sid": 7},
        {"sid": "s" * 33},
        {"exp": "tomorrow"},
        {"iat": "today"},
    ],
    ids=lambda changed: ",".join(f"{k}={v}" for k, v in changed.items()),
)
def test_a_token_with_a_missing_or_wrong_claim_is_rejected(
    service: JwtTokenService, changed: dict[str, Any]
) -> None:
    with pytest.raises(NotAuthenticated):
        service.verify(forge({"alg": ALGORITHM}, claims(**changed)))


@pytest.mark.parametrize(
    "subject",
    ["abc", "", " 7", "7 ", "-7", "+7", "07", "7.0", "١٢", str(MAX_ID + 1), "9" * 5000, 7, 7.0, ["7"], True],
    ids=repr,
)
def test_a_token_whose_subject_is_not_a_user_id_is_rejected(service: JwtTokenService, subject: Any) -> None:
    with pytest.raises(NotAuthenticated):
        service.verify(forge({"alg": ALGORITHM}, claims(sub=subject)))


def test_the_largest_id_is_a_valid_subject(service: JwtTokenService) -> None:
    assert service.verify(forge({"alg": ALGORITHM}, claims(sub=str(MAX_ID)))).user_id == MAX_ID


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "...",
        "eyJhbGciOiJIUzI1NiJ9..",
        "é.é.é",
        "\x00.\x00.\x00",
        "x" * 100_000,
    ],
    ids=lambda token: repr(token[:20]),
)
def test_a_malformed_token_is_rejected(service: JwtTokenService, token: str) -> None:
    with pytest.raises(NotAuthenticated):
        service.verify(token)


def test_a_signed_token_whose_payload_is_not_an_object_is_rejected(service: JwtTokenService) -> None:
    with pytest.raises(NotAuthenticated):
        service.verify(forge({"alg": ALGORITHM}, ["sub", "7"]))


def test_a_token_whose_header_is_not_an_object_is_rejected(service: JwtTokenService) -> None:
    token = forge({"alg": ALGORITHM}, claims())
    _, payload, signature = token.split(".")

    with pytest.raises(NotAuthenticated):
        service.verify(f"{_b64(b'[1]')}.{payload}.{signature}")


class WallClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def test_a_remembered_token_is_refused_once_it_has_expired() -> None:
    wall_clock = WallClock()
    service = JwtTokenService(SECRET, TTL, FixedClock(datetime.now(UTC)), wall_clock=wall_clock)
    token = service.issue(42, SID).value
    assert service.verify(token).user_id == 42

    wall_clock.now += TTL + 1

    with pytest.raises(NotAuthenticated, match="expired"):
        service.verify(token)


def test_only_tokens_that_passed_are_remembered() -> None:
    service = JwtTokenService(SECRET, TTL, FixedClock(datetime.now(UTC)))
    forged = forge({"alg": "HS256", "typ": "JWT"}, claims(), secret=OTHER_SECRET)

    for _ in range(2):
        with pytest.raises(NotAuthenticated):
            service.verify(forged)
