from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import attrs

from domain.errors import InvalidPostText, PostQuotaExceeded, PostTooLarge


@attrs.frozen
class PostText:
    """A post's text: non-empty, and at most `max_bytes` bytes (not characters) once encoded as UTF-8."""

    DEFAULT_MAX_BYTES: ClassVar[int] = 1_048_576
    # What the storage column can hold (MySQL MEDIUMTEXT): the ceiling for any configured limit.
    STORAGE_MAX_BYTES: ClassVar[int] = 16_777_215

    value: str = attrs.field(repr=False)

    @classmethod
    def parse(cls, value: str, max_bytes: int = DEFAULT_MAX_BYTES) -> PostText:
        if not value:
            raise InvalidPostText("text must not be empty")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidPostText("text must be valid Unicode text") from exc
        if size > max_bytes:
            raise PostTooLarge(size, max_bytes)
        return cls(value)

    @property
    def size(self) -> int:
        """UTF-8 bytes: what quotas count."""
        return len(self.value.encode("utf-8"))


@attrs.frozen
class Post:
    id: int
    owner_id: int
    text: PostText
    created_at: datetime


@attrs.frozen
class NewPost:
    """A post about to be stored. The repository gives it an id and its `created_at`, taken where the
    write takes its place in commit order, so that a user's list never shows time going backwards."""

    owner_id: int
    text: PostText

    @staticmethod
    def owner_of(posts: Sequence[NewPost]) -> int:
        """The one owner of `posts` (stored together, they count against one quota)."""
        owners = {post.owner_id for post in posts}
        if len(owners) != 1:
            raise ValueError(f"posts stored together have one owner, not {len(owners)}")
        return owners.pop()


@attrs.frozen
class PostQuota:
    """What one user may hold at most: posts, and bytes of text (None: no limit)."""

    max_posts: int | None = None
    max_bytes: int | None = None

    def check(self, posts: int, size: int) -> None:
        """Raises PostQuotaExceeded unless a user holding `posts` posts of `size` bytes is within it."""
        if (self.max_posts is not None and posts > self.max_posts) or (
            self.max_bytes is not None and size > self.max_bytes
        ):
            raise PostQuotaExceeded


@attrs.frozen(order=True)
class PostPosition:
    """Where a post sits in its owner's list, which is ordered by (created_at, id). A page that
    starts after a position stays well defined when the post at that position is deleted."""

    created_at: datetime
    id: int

    @classmethod
    def of(cls, post: Post) -> PostPosition:
        return cls(post.created_at, post.id)

    @property
    def microseconds(self) -> int:
        """`created_at` as whole microseconds since the Unix epoch: the precision of every store."""
        return (self.created_at - _EPOCH) // timedelta(microseconds=1)

    @classmethod
    def at(cls, microseconds: int, post_id: int) -> PostPosition:
        """Raises OverflowError for a time no datetime can hold."""
        return cls(_EPOCH + timedelta(microseconds=microseconds), post_id)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
