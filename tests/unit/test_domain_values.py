from __future__ import annotations

import pytest

from domain.errors import InvalidEmail, InvalidPassword, InvalidPostText, PostTooLarge
from domain.posts import PostText
from domain.users import Email, Password

LIMIT = PostText.DEFAULT_MAX_BYTES


def test_email_is_trimmed_and_lower_cased() -> None:
    assert Email.parse("  Alice.Smith@Example.COM \t").value == "alice.smith@example.com"


def test_an_email_read_back_from_the_store_is_trusted_as_stored() -> None:
    with pytest.raises(InvalidEmail):
        Email.parse("legacy..dots@example.com")

    assert Email("legacy..dots@example.com").value == "legacy..dots@example.com"


def test_emails_differing_only_in_case_are_equal() -> None:
    assert Email.parse("BOB@example.com") == Email.parse("bob@EXAMPLE.com")
    assert hash(Email.parse("BOB@example.com")) == hash(Email.parse("bob@EXAMPLE.com"))


def test_emails_differing_in_more_than_case_are_not_equal() -> None:
    assert Email.parse("jose@example.com") != Email.parse("josé@example.com")


@pytest.mark.parametrize(
    "address",
    [
        "",
        "   ",
        "no-at-sign",
        "@example.com",
        "alice@",
        "alice@@example.com",
        "alice@example",
        "a b@example.com",
    ],
)
def test_malformed_email_is_rejected(address: str) -> None:
    with pytest.raises(InvalidEmail):
        Email.parse(address)


def test_email_over_320_characters_is_rejected() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 60] * 5) + ".com"
    address = f"{local}@{domain}"
    assert len(address) > Email.MAX_LENGTH
    with pytest.raises(InvalidEmail):
        Email.parse(address)


def test_email_with_a_lone_surrogate_is_rejected() -> None:
    with pytest.raises(InvalidEmail):
        Email.parse("\ud800@example.com")


@pytest.mark.parametrize("length", [Password.MIN_LENGTH, Password.MAX_LENGTH])
def test_password_at_either_length_bound_is_accepted(length: int) -> None:
    assert len(Password("p" * length).value) == length


@pytest.mark.parametrize("length", [0, Password.MIN_LENGTH - 1, Password.MAX_LENGTH + 1])
def test_password_outside_the_length_bounds_is_rejected(length: int) -> None:
    with pytest.raises(InvalidPassword):
        Password("p" * length)


def test_password_is_kept_exactly_as_sent() -> None:
    sent = "  spaced out\t\n"
    assert Password(sent).value == sent


def test_password_length_counts_characters_not_bytes() -> None:
    assert Password("😀" * Password.MAX_LENGTH).value == "😀" * Password.MAX_LENGTH


def test_password_with_a_lone_surrogate_is_rejected() -> None:
    with pytest.raises(InvalidPassword):
        Password("abcdefgh\udc00")


def test_password_is_not_in_its_repr() -> None:
    assert "hunter22secret" not in repr(Password("hunter22secret"))


def test_post_text_at_exactly_the_byte_limit_is_accepted() -> None:
    assert len(PostText.parse("a" * LIMIT).value) == LIMIT


def test_post_text_one_byte_over_the_limit_is_too_large() -> None:
    with pytest.raises(PostTooLarge) as raised:
        PostText.parse("a" * (LIMIT + 1))
    assert (raised.value.size, raised.value.limit) == (LIMIT + 1, LIMIT)


def test_post_text_limit_counts_utf8_bytes_not_characters() -> None:
    assert PostText.parse("é" * (LIMIT // 2)).value
    with pytest.raises(PostTooLarge):
        PostText.parse("é" * (LIMIT // 2 + 1))


def test_post_text_of_four_byte_characters_at_the_limit_is_accepted() -> None:
    assert PostText.parse("😀" * (LIMIT // 4)).value == "😀" * (LIMIT // 4)


def test_post_text_honours_a_configured_limit() -> None:
    assert PostText.parse("abcd", max_bytes=4).value == "abcd"
    with pytest.raises(PostTooLarge):
        PostText.parse("abcde", max_bytes=4)


def test_empty_post_text_is_rejected() -> None:
    with pytest.raises(InvalidPostText):
        PostText.parse("")


def test_post_text_with_a_lone_surrogate_is_rejected() -> None:
    with pytest.raises(InvalidPostText):
        PostText.parse("hello \ud83d")
