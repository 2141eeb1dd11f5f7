from __future__ import annotations

import pytest

from domain.sessions import RefreshToken, new_session_id


def test_an_issued_token_parses_back_to_itself_and_matches_only_its_own_hash() -> None:
    token = RefreshToken.issue(42, new_session_id(), 3)

    parsed = RefreshToken.parse(token.value)

    assert parsed == token
    assert parsed.matches(token.hash)
    assert not parsed.matches(RefreshToken.issue(42, token.session_id, 3).hash)


def test_a_token_carries_256_random_bits_and_keeps_them_out_of_its_repr() -> None:
    token = RefreshToken.issue(1, new_session_id(), 0)

    assert len(token.secret) >= 43  # 32 bytes in URL-safe base64
    assert token.secret not in repr(token)
    assert token.hash != token.value
    assert len(token.hash) == 64


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "1.a.0",
        "1.a.0.b.c",
        "0.a.0.b",
        "01.a.0.b",
        "1.a.01.b",
        "1..0.b",
        "1.a.0.",
        "-1.a.0.b",
        "9223372036854775808.a.0.b",
        "1.a.-1.b",
        "\u0661.a.0.b",
        "1.a.0." + "b" * 200,
    ],
)
def test_anything_the_service_cannot_have_issued_does_not_parse(value: str) -> None:
    assert RefreshToken.parse(value) is None
