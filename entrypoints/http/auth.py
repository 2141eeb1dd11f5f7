"""The one place a request's caller is resolved: every authenticated route of both APIs comes here."""

from __future__ import annotations

from starlette.types import Scope

from application.callers import Caller, ResolveCaller
from application.ports import CacheLookup
from domain.errors import NotAuthenticated
from entrypoints.http.request_log import remember_user


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header's value; the scheme is
    case-insensitive."""
    if not authorization:
        raise NotAuthenticated("Not authenticated")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Not authenticated")
    return token.strip()


async def caller(scope: Scope, resolve: ResolveCaller, token: str) -> Caller:
    """Who `token` acts for (raises NotAuthenticated), who is then named in the request's log line.
    The compatibility API passes its `?token=` value, the canonical API its bearer token."""
    resolved = await resolve.execute(token)
    remember_user(scope, resolved.user_id)
    return resolved


async def caller_with_posts(
    scope: Scope, resolve: ResolveCaller, token: str, view: str
) -> tuple[Caller, CacheLookup]:
    """`caller`, with the cache's answer for `view` of the caller's posts, from the same round trip
    (the cached get-posts)."""
    resolved, posts = await resolve.with_posts(token, view)
    remember_user(scope, resolved.user_id)
    return resolved, posts
