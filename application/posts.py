from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from typing import ClassVar, Protocol

import attrs

from application.errors import CacheUnavailable
from application.limits import RateLimit
from application.ports import CacheHit, CacheMiss, CacheOutage, PostsCache
from domain.errors import NotAuthenticated, PostNotFound
from domain.ports import UnitOfWorkFactory
from domain.posts import NewPost, Post, PostPosition, PostQuota, PostText
from domain.users import User

log = logging.getLogger(__name__)


class PostsRenderer(Protocol):
    """Turns a user's posts into the bytes one API answers with; `view` names that wire format in
    the cache."""

    view: str

    def render(self, owner: User, posts: Sequence[Post]) -> bytes: ...


@attrs.frozen
class Page:
    """At most `limit` posts of a list, those after `after` when given."""

    MAX_LIMIT: ClassVar[int] = 1000

    limit: int
    after: PostPosition | None = None

    def view(self, list_view: str) -> str:
        start = "" if self.after is None else f"{self.after.microseconds}.{self.after.id}"
        return f"{list_view}:{self.limit}:{start}"


@attrs.frozen
class RenderedPosts:
    payload: bytes
    from_cache: bool
    # Changes whenever the rendering may have (see rendering_tag), and reveals nothing else.
    tag: str
    # For a page: where the next page starts, while more posts follow.
    next_after: PostPosition | None = None

    def cache_entry(self) -> bytes:
        """The rendering with its tag and next position, as the cache keeps it."""
        after = "-" if self.next_after is None else f"{self.next_after.microseconds}.{self.next_after.id}"
        return f"{self.tag} {after}\n".encode() + self.payload

    @classmethod
    def from_cache_entry(cls, entry: bytes) -> RenderedPosts:
        header, _, payload = entry.partition(b"\n")
        tag, _, after = header.decode().partition(" ")
        if after == "-":
            return cls(payload, from_cache=True, tag=tag)
        microseconds, _, post_id = after.partition(".")
        return cls(payload, True, tag, PostPosition.at(int(microseconds), int(post_id)))


def rendering_tag(user_id: int, version: str, view: str, payload: bytes) -> str:
    """A tag for `payload` as rendered for the user's `view` under the cache's `version` ("" when the
    cache is unavailable: then the rendering alone decides). Two users never share a tag, so a client
    that switches accounts is never told that another account's list is current."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (str(user_id).encode(), version.encode(), view.encode(), payload):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


async def _invalidate(cache: PostsCache, user_id: int) -> None:
    try:
        await cache.invalidate(user_id)
    except CacheUnavailable:
        # The write is committed; the cache adapter keeps the invalidation pending and does not
        # serve this user's entries until it has gone through.
        log.warning("cache unavailable: invalidation for user %s deferred", user_id)


class AddPost:
    """A user adds a text of at most `max_bytes` UTF-8 bytes, within their rate limit and quota; their
    cached list is dropped. The post's time is the store's, taken in commit order."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        cache: PostsCache,
        max_bytes: int,
        per_user: RateLimit,
        quota: PostQuota,
    ) -> None:
        self._uow = uow
        self._cache = cache
        self._max_bytes = max_bytes
        self._per_user = per_user
        self._quota = quota

    async def execute(self, user_id: int, text: str) -> int:
        await self._per_user.count(str(user_id))
        post_text = PostText.parse(text, self._max_bytes)
        async with self._uow() as uow:
            post_id = await uow.posts.add(NewPost(user_id, post_text), self._quota)
            await uow.commit()
        await _invalidate(self._cache, user_id)
        return post_id


class GetPosts:
    """A user's own posts, oldest first (all of them, or one page), served from the cache while no
    write of theirs has invalidated it; a cache outage falls back to the database. Each rendering
    carries a tag that any write of the owner changes, so a client holding the current tag can be
    told so from the cache alone."""

    def __init__(self, uow: UnitOfWorkFactory, cache: PostsCache) -> None:
        self._uow = uow
        self._cache = cache

    async def execute(self, user_id: int, renderer: PostsRenderer, page: Page | None = None) -> RenderedPosts:
        view = renderer.view if page is None else page.view(renderer.view)
        cached = await self._cache.lookup(user_id, view)
        match cached:
            case CacheHit(entry):
                return RenderedPosts.from_cache_entry(entry)
            case CacheOutage(reason):
                log.warning(
                    "cache unavailable (%s): serving posts of user %s from the database", reason, user_id
                )

        async with self._uow() as uow:
            owner = await uow.users.get(user_id)
            if page is None:
                posts = await uow.posts.list_by_owner(user_id)
            else:
                # One more than asked for says whether another page follows.
                posts = await uow.posts.page_by_owner(user_id, page.after, page.limit + 1)
        if owner is None:
            raise NotAuthenticated
        next_after = None
        if page is not None and len(posts) > page.limit:
            posts = posts[: page.limit]
            next_after = PostPosition.of(posts[-1])
        payload = renderer.render(owner, posts)
        version = cached.version if isinstance(cached, CacheMiss) else ""
        rendered = RenderedPosts(payload, False, rendering_tag(user_id, version, view, payload), next_after)

        if isinstance(cached, CacheMiss):
            try:
                await self._cache.fill(user_id, view, cached.version, rendered.cache_entry())
            except CacheUnavailable:
                log.warning("cache unavailable: posts of user %s not cached", user_id)
        return rendered


class DeletePost:
    """A user deletes one of their own posts; someone else's post is 'not found' and survives."""

    def __init__(self, uow: UnitOfWorkFactory, cache: PostsCache) -> None:
        self._uow = uow
        self._cache = cache

    async def execute(self, user_id: int, post_id: int) -> None:
        async with self._uow() as uow:
            deleted = await uow.posts.delete(post_id, user_id)
            await uow.commit()
        if not deleted:
            raise PostNotFound
        await _invalidate(self._cache, user_id)
