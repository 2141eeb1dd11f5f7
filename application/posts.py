from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import attrs

from application.errors import CacheUnavailable
from application.limits import RateLimit
from application.ports import CacheHit, CacheMiss, CacheOutage, Clock, PostsCache
from domain.errors import NotAuthenticated, PostNotFound
from domain.ports import UnitOfWorkFactory
from domain.posts import NewPost, Post, PostQuota, PostText
from domain.users import User

log = logging.getLogger(__name__)


class PostsRenderer(Protocol):
    """Turns a user's posts into the bytes one API answers with; `view` names that wire format in
    the cache."""

    view: str

    def render(self, owner: User, posts: Sequence[Post]) -> bytes: ...


@attrs.frozen
class RenderedPosts:
    payload: bytes
    from_cache: bool


async def _invalidate(cache: PostsCache, user_id: int) -> None:
    try:
        await cache.invalidate(user_id)
    except CacheUnavailable:
        # The write is committed; the cache adapter keeps the invalidation pending and does not
        # serve this user's entries until it has gone through.
        log.warning("cache unavailable: invalidation for user %s deferred", user_id)


class AddPost:
    """A user adds a text of at most `max_bytes` UTF-8 bytes, within their rate limit and quota; their
    cached list is dropped."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        cache: PostsCache,
        clock: Clock,
        max_bytes: int,
        per_user: RateLimit,
        quota: PostQuota,
    ) -> None:
        self._uow = uow
        self._cache = cache
        self._clock = clock
        self._max_bytes = max_bytes
        self._per_user = per_user
        self._quota = quota

    async def execute(self, user_id: int, text: str) -> int:
        await self._per_user.count(str(user_id))
        post_text = PostText.parse(text, self._max_bytes)
        async with self._uow() as uow:
            post = await uow.posts.add(NewPost(user_id, post_text, self._clock.now()), self._quota)
            await uow.commit()
        await _invalidate(self._cache, user_id)
        return post.id


class GetPosts:
    """A user's own posts, oldest first, served from the cache while no write of theirs has
    invalidated it; a cache outage falls back to the database."""

    def __init__(self, uow: UnitOfWorkFactory, cache: PostsCache) -> None:
        self._uow = uow
        self._cache = cache

    async def execute(self, user_id: int, renderer: PostsRenderer) -> RenderedPosts:
        cached = await self._cache.lookup(user_id, renderer.view)
        match cached:
            case CacheHit(payload):
                return RenderedPosts(payload, from_cache=True)
            case CacheOutage(reason):
                log.warning(
                    "cache unavailable (%s): serving posts of user %s from the database", reason, user_id
                )

        async with self._uow() as uow:
            owner = await uow.users.get(user_id)
            posts = await uow.posts.list_by_owner(user_id)
        if owner is None:
            raise NotAuthenticated
        payload = renderer.render(owner, posts)

        if isinstance(cached, CacheMiss):
            try:
                await self._cache.fill(user_id, renderer.view, cached.version, payload)
            except CacheUnavailable:
                log.warning("cache unavailable: posts of user %s not cached", user_id)
        return RenderedPosts(payload, from_cache=False)


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
