"""Each API's own error table: the answers that name configured limits, and what both share."""

from __future__ import annotations

from types import ModuleType

import pytest

from application.errors import CacheUnavailable
from domain.errors import NotAuthenticated, PostTooLarge, StorageUnavailable
from entrypoints.http import canonical, compat
from entrypoints.http.errors import Answer, exception_handlers_for
from entrypoints.http.wire import Limits


def test_the_default_post_limit_keeps_the_contracts_wording_in_each_api() -> None:
    assert canonical.error_table(Limits())[PostTooLarge].detail == "Text exceeds 1 MB size limit"
    assert compat.error_table(Limits())[PostTooLarge].detail == "Post_Text size exceeds 1 MB"


def test_a_configured_post_limit_is_named_in_each_apis_413() -> None:
    limits = Limits(max_post_bytes=2048)

    assert canonical.error_table(limits)[PostTooLarge].detail == "Text exceeds 2048 bytes size limit"
    assert compat.error_table(limits)[PostTooLarge].detail == "Post_Text size exceeds 2048 bytes"


@pytest.mark.parametrize(
    ("seconds", "said"), [(300, "5 minutes"), (60, "1 minute"), (90, "90 seconds"), (7200, "120 minutes")]
)
def test_the_cache_lifetime_is_said_as_configured(seconds: int, said: str) -> None:
    assert Limits(cache_ttl_seconds=seconds).cache_lifetime == said


@pytest.mark.parametrize("api", [canonical, compat], ids=["canonical", "compat"])
def test_both_apis_answer_infrastructure_failures_503_and_bad_tokens_401(api: ModuleType) -> None:
    handlers = exception_handlers_for(api.error_table(Limits()))

    answers = {error: handlers[error] for error in (StorageUnavailable, CacheUnavailable, NotAuthenticated)}

    assert {error: answer.status for error, answer in answers.items() if isinstance(answer, Answer)} == {
        StorageUnavailable: 503,
        CacheUnavailable: 503,
        NotAuthenticated: 401,
    }
