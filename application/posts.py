from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import ClassVar, Protocol

import attrs

from application.errors import CacheUnavailable
from application.limits import RateLimit
from application.ports import CacheHit, CacheLookup, CacheMiss, CacheOutage, PostsCache
from application.precedence import ShortFirst
from domain.errors import NotAuthenticated, PostQuotaExceeded, StorageUnavailable
from domain.ports import UnitOfWorkFactory
from domain.posts import NewPost, Post, PostPosition, PostQuota, PostText
from domain.users import User

log = logging.getLogger(__name__)


class PostsRenderer(Protocol):
    """Turns a user's posts into the bytes one API answers with, a page at a time; `view` names that
    wire format in the cache."""

    view: str

    def render(self, owner: User, posts: Sequence[Post], *, first: bool, last: bool) -> Iterator[bytes]:
        """One page's piece of the list, in slices small enough to be made and sent one at a time
        (a long post in several): the pieces of its pages in order, from the first to the last, make
        the whole rendering (a page that is both renders the whole list)."""
        ...


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
    """A rendering: `payload`, then whatever `rest` yields when the list was too long to hold whole
    (a cached rendering, or a page, is always whole)."""

    payload: bytes
    from_cache: bool
    # Changes whenever the rendering may have (see rendering_tag), and reveals nothing else. None
    # for a rendering handed out as it is made: its tag would be needed before it is known.
    tag: str | None
    # For a page: where the next page starts, while more posts follow.
    next_after: PostPosition | None = None
    rest: AsyncIterator[bytes] | None = None

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


class _FillBuffers:
    """What renderings collected for the cache may hold between them, so that many readers of big
    lists at once do not each keep up to a cache entry's worth."""

    def __init__(self, budget: int) -> None:
        self._free = budget

    def take(self, size: int) -> bool:
        if size > self._free:
            return False
        self._free -= size
        return True

    def give_back(self, size: int) -> None:
        self._free += size


class _Collected:
    """A rendering collected for the cache as it is made, given up once it outgrows `limit` or the
    buffers' budget."""

    def __init__(self, buffers: _FillBuffers, limit: int) -> None:
        self._buffers = buffers
        self._limit = limit
        self._pieces: list[bytes] | None = []
        self._size = 0

    def add(self, piece: bytes) -> None:
        if self._pieces is None:
            return
        if self._size + len(piece) > self._limit or not self._buffers.take(len(piece)):
            self.give_up()
            return
        self._pieces.append(piece)
        self._size += len(piece)

    def payload(self) -> bytes | None:
        return None if self._pieces is None else b"".join(self._pieces)

    def give_up(self) -> None:
        self._buffers.give_back(self._size)
        self._pieces = None
        self._size = 0


async def _invalidate(cache: PostsCache, user_id: int) -> None:
    try:
        await cache.invalidate(user_id)
    except CacheUnavailable:
        # The write is committed; the cache adapter keeps the invalidation pending and does not
        # serve this user's entries until it has gone through.
        log.warning("cache unavailable: invalidation for user %s deferred", user_id)


def _joined(slices: list[bytes], at_least: int) -> Iterator[bytes]:
    """`slices` in order, consecutive ones joined into pieces of at least `at_least` bytes (the last
    may be shorter). It empties `slices` as it goes: a slice is not held once its piece is out."""
    slices.reverse()
    while slices:
        group = [slices.pop()]
        size = len(group[0])
        while slices and size < at_least:
            group.append(slices.pop())
            size += len(group[-1])
        piece = b"".join(group)
        del group
        yield piece


@attrs.frozen
class _QueuedAdd:
    post: NewPost
    # The post's id, or why it was not stored; cancelled when the request went away first.
    added: asyncio.Future[int]


class AddPost:
    """A user adds a text of at most `max_bytes` UTF-8 bytes, within their rate limit and quota; their
    cached list is dropped. The post's time is the store's, taken in commit order.

    One user's adds are written one after another anyway (their quota is counted in one row, which
    each write holds until it commits), so the adds of a user that arrive while one of theirs is
    being written wait and are then written together, in one unit of work and one commit (a group
    commit): a burst costs little more than one add, not one transaction each. A group holds at most
    `MAX_GROUP_POSTS` posts and `MAX_GROUP_BYTES` of text (a bigger post goes alone). If together they
    would exceed the quota, they are written one at a time, so that those that fit are kept; if the
    store fails, the group and every add of the user queued behind it get the error at once. Each
    request is answered once its own post is committed; one that goes away before its group starts
    stores nothing."""

    MAX_GROUP_POSTS = 64
    MAX_GROUP_BYTES = 1024 * 1024

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
        self._queued: dict[int, collections.deque[_QueuedAdd]] = {}
        self._writers: dict[int, asyncio.Task[None]] = {}

    async def execute(self, user_id: int, text: str) -> int:
        await self._per_user.count(str(user_id))
        post = NewPost(user_id, PostText.parse(text, self._max_bytes))
        queued = _QueuedAdd(post, asyncio.get_running_loop().create_future())
        self._queued.setdefault(user_id, collections.deque()).append(queued)
        if user_id not in self._writers:
            self._writers[user_id] = asyncio.ensure_future(self._write_queued(user_id))
        return await queued.added

    async def _write_queued(self, user_id: int) -> None:
        group: list[_QueuedAdd] = []
        try:
            while group := self._next_group(user_id):
                await self._write(user_id, group)
        finally:
            del self._writers[user_id]
            # Anything is left only when the writer itself was stopped (cancelled): answer, never hang.
            for left in (*group, *self._queued.pop(user_id, ())):
                if not left.added.done():
                    left.added.set_exception(StorageUnavailable("the write was abandoned"))

    def _next_group(self, user_id: int) -> list[_QueuedAdd]:
        queue = self._queued.get(user_id, collections.deque())
        group: list[_QueuedAdd] = []
        size = 0
        while queue:
            head = queue[0]
            if head.added.done():
                queue.popleft()
                continue
            if group and (
                len(group) == self.MAX_GROUP_POSTS or size + head.post.text.size > self.MAX_GROUP_BYTES
            ):
                break
            group.append(queue.popleft())
            size += head.post.text.size
        if not queue:
            self._queued.pop(user_id, None)
        return group

    async def _write(self, user_id: int, group: list[_QueuedAdd]) -> None:
        try:
            async with self._uow() as uow:
                ids = await uow.posts.add_all([queued.post for queued in group], self._quota)
                await uow.commit()
        except PostQuotaExceeded as exc:
            if len(group) == 1:
                _fail(group, exc)
                return
            for queued in group:
                await self._write(user_id, [queued])
            return
        except Exception as exc:
            # The adds queued behind are told too: they would wait for the same store, each group
            # for its whole deadline.
            _fail([*group, *self._queued.pop(user_id, ())], exc)
            return
        await _invalidate(self._cache, user_id)
        for queued, post_id in zip(group, ids, strict=True):
            if not queued.added.done():
                queued.added.set_result(post_id)


def _fail(group: list[_QueuedAdd], error: Exception) -> None:
    for queued in group:
        if not queued.added.done():
            queued.added.set_exception(error)


class GetPosts:
    """A user's own posts, oldest first (all of them, or one page), served from the cache while no
    write of theirs has invalidated it; a cache outage falls back to the database. Each whole
    rendering carries a tag that any write of the owner changes, so a client holding the current
    tag can be told so from the cache alone.

    From the database a whole list is read and rendered page by page, each page in a unit of work
    of its own: a long read is bounded per page rather than as a whole, and holds no connection
    while the client takes its time. A rendering longer than `stream_after_bytes` is handed out as
    it is made instead of being held whole. Pages grow to about `page_bytes`, and at most
    `page_readers` pages are read and rendered at once in the process, which bounds the memory big
    lists take and the share of the process they take: with one, a small list's request waits
    behind at most one page of a big one (a small user's p99 during 8 reads of a 40 MiB list, on
    SQLite: 3.9 ms against 20 ms with four at once, 1.7 ms idle; the big lists come half as fast).
    A page comes from the renderer in slices (a long post in several), and other requests are
    served between them, and first when any are under way (`ShortFirst`): during 8 reads of an
    80 MiB list of 1 MiB posts on SQLite, a small user's p99 was 1.5 ms against 1.1 ms idle with
    one turn between slices (5 ms when a post was made and sent at once). A list is cached only
    up to `max_entry_bytes`, and renderings being collected for the cache hold at most twice that
    between them.

    Misses of one view of one user under one cache version share a reading: the first reads, the
    others wait for its rendering (64 connections' first requests on a cold list: the last answered
    after 660 ms when each read for itself, one page at a time, behind all the others). They get
    its error too; if its request goes away, or it is handed out as it is made (one client's
    stream), each reads for itself."""

    FIRST_PAGE_POSTS = 1
    # Slices are handed out joined into pieces at least this long: one write to the client for each
    # instead of one per slice, and few blocks waiting in a slow client's send buffer among the
    # heap's others (the holes they leave go back to the system once the process's big answers are
    # sent: entrypoints/allocator.py).
    HANDED_OUT_BYTES = 128 * 1024
    MAX_PAGE_POSTS = 512
    # A page is at most this many times as long as the one before: the sizes of the posts read so
    # far predict those of the next ones, but not by much.
    PAGE_GROWTH = 16

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        cache: PostsCache,
        max_entry_bytes: int = 8 * 1024 * 1024,
        page_bytes: int = 256 * 1024,
        stream_after_bytes: int = 64 * 1024,
        page_readers: int = 1,
        short_first: ShortFirst | None = None,
    ) -> None:
        self._uow = uow
        self._short_first = short_first or ShortFirst()
        self._cache = cache
        self._max_entry_bytes = max_entry_bytes
        self._page_bytes = page_bytes
        self._stream_after = stream_after_bytes
        self._page_readers = asyncio.Semaphore(page_readers)
        self._fill_buffers = _FillBuffers(2 * max_entry_bytes)
        # Renderings being read from the database, by user, view and cache version: a miss that
        # finds one under way waits for it instead of reading the same rows again.
        self._underway: dict[tuple[int, str, str], asyncio.Future[RenderedPosts | None]] = {}

    async def execute(
        self,
        user_id: int,
        renderer: PostsRenderer,
        page: Page | None = None,
        cached: CacheLookup | None = None,
    ) -> RenderedPosts:
        """`cached`: the cache's answer for this view when the caller already asked it."""
        view = renderer.view if page is None else page.view(renderer.view)
        if cached is None:
            cached = await self._cache.lookup(user_id, view)
        match cached:
            case CacheHit(entry):
                return RenderedPosts.from_cache_entry(entry)
            case CacheOutage(reason):
                log.warning(
                    "cache unavailable (%s): serving posts of user %s from the database", reason, user_id
                )
        if not isinstance(cached, CacheMiss):
            # No version to tell a reading made before a write from one made after it: none shared.
            return await self._render(user_id, renderer, view, None, page)
        key = (user_id, view, cached.version)
        underway = self._underway.get(key)
        if underway is not None:
            shared = await asyncio.shield(underway)
            if shared is not None:
                return shared
            return await self._render(user_id, renderer, view, cached.version, page)
        underway = self._underway[key] = asyncio.get_running_loop().create_future()
        try:
            rendered = await self._render(user_id, renderer, view, cached.version, page)
        except Exception as error:
            underway.set_exception(error)
            # Retrieved here: an error no other request waited for is not reported as lost.
            underway.exception()
            raise
        except BaseException:
            # This request went away (cancelled): the others read for themselves.
            underway.set_result(None)
            raise
        finally:
            del self._underway[key]
        # A rendering handed out as it is made is one client's stream: never shared.
        underway.set_result(rendered if rendered.rest is None else None)
        return rendered

    async def _render(
        self, user_id: int, renderer: PostsRenderer, view: str, version: str | None, page: Page | None
    ) -> RenderedPosts:
        if page is not None:
            return await self._page(user_id, renderer, view, version, page)
        pieces = self._pieces(user_id, renderer, view, version)
        # The beginning is made before answering, so that a failure there is still an error answer.
        head: list[bytes] = []
        size = 0
        async for piece in pieces:
            head.append(piece)
            size += len(piece)
            if size > self._stream_after:
                return RenderedPosts(b"".join(head), False, None, rest=pieces)
        payload = b"".join(head)
        return RenderedPosts(payload, False, rendering_tag(user_id, version or "", view, payload))

    async def _page(
        self, user_id: int, renderer: PostsRenderer, view: str, version: str | None, page: Page
    ) -> RenderedPosts:
        async with self._uow() as uow:
            owner = await uow.users.get(user_id)
            # One more than asked for says whether another page follows.
            posts = await uow.posts.page_by_owner(user_id, page.after, page.limit + 1)
        if owner is None:
            raise NotAuthenticated
        next_after = None
        if len(posts) > page.limit:
            posts = posts[: page.limit]
            next_after = PostPosition.of(posts[-1])
        payload = b"".join(renderer.render(owner, posts, first=True, last=True))
        tag = rendering_tag(user_id, version or "", view, payload)
        rendered = RenderedPosts(payload, False, tag, next_after)
        if version is not None:
            await self._fill(user_id, view, version, rendered.cache_entry())
        return rendered

    async def _pieces(
        self, user_id: int, renderer: PostsRenderer, view: str, version: str | None
    ) -> AsyncIterator[bytes]:
        """The rendering page by page; filled into the cache against `version` once whole, if it fits."""
        collected = _Collected(self._fill_buffers, self._max_entry_bytes if version is not None else 0)
        owner: User | None = None
        after: PostPosition | None = None
        first, limit = True, self.FIRST_PAGE_POSTS
        handed_out = 0
        try:
            # Registered from its first page: a list read from the database may turn out long.
            with self._short_first.long_answer():
                while True:
                    async with self._page_readers:
                        async with self._uow() as uow:
                            if owner is None:
                                owner = await uow.users.get(user_id)
                                if owner is None:
                                    raise NotAuthenticated
                            if handed_out > self._stream_after:
                                # Opening the unit of work and starting its read were one step of
                                # ~0.3 ms on the event loop (SQLAlchemy's part of a query): two for
                                # an answer known to be long.
                                await self._short_first.give_way()
                            posts = await uow.posts.page_by_owner(user_id, after, limit)
                        last = len(posts) < limit
                        slices: list[bytes] = []
                        for piece in renderer.render(owner, posts, first=first, last=last):
                            if slices:
                                # Other requests are served between the slices of a long post, made
                                # and then sent.
                                await self._short_first.give_way()
                            slices.append(piece)
                        if not last:
                            after, limit = PostPosition.of(posts[-1]), self._next_limit(posts, limit)
                        first = False
                        # A client that takes its time holds only what of its page is yet to go out:
                        # not the posts, nor the slices already sent (16 readers stalled in the
                        # middle of an 80 MiB list of 1 MiB posts held some 2 MiB each).
                        del posts
                    for number, piece in enumerate(_joined(slices, self.HANDED_OUT_BYTES)):
                        if number:
                            await self._short_first.give_way()
                        collected.add(piece)
                        handed_out += len(piece)
                        yield piece
                    if last:
                        break
                payload = collected.payload()
                if version is not None and payload is not None:
                    tag = rendering_tag(user_id, version, view, payload)
                    await self._fill(user_id, view, version, RenderedPosts(payload, False, tag).cache_entry())
        finally:
            collected.give_up()

    def _next_limit(self, posts: Sequence[Post], limit: int) -> int:
        average = max(1, sum(len(post.text.value) for post in posts) // len(posts))
        return max(1, min(limit * self.PAGE_GROWTH, self.MAX_PAGE_POSTS, self._page_bytes // average))

    async def _fill(self, user_id: int, view: str, version: str, entry: bytes) -> None:
        try:
            await self._cache.fill(user_id, view, version, entry)
        except CacheUnavailable:
            log.warning("cache unavailable: posts of user %s not cached", user_id)


class DeletePost:
    """A user deletes one of their own posts: True once it is gone. False when they have no post with
    that id; someone else's post with it survives."""

    def __init__(self, uow: UnitOfWorkFactory, cache: PostsCache) -> None:
        self._uow = uow
        self._cache = cache

    async def execute(self, user_id: int, post_id: int) -> bool:
        async with self._uow() as uow:
            deleted = await uow.posts.delete(post_id, user_id)
            await uow.commit()
        if deleted:
            await _invalidate(self._cache, user_id)
        return deleted
