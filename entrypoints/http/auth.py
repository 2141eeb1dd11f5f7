from __future__ import annotations

from starlette.requests import Request

from application.ports import TokenService
from domain.errors import NotAuthenticated
from entrypoints.http.request_log import remember_user


def bearer_token(request: Request) -> str:
    """The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive."""
    header = request.headers.get("authorization")
    if not header:
        raise NotAuthenticated("Not authenticated")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Not authenticated")
    return token.strip()


def verified_user(request: Request, tokens: TokenService, token: str) -> int:
    """The user `token` names (raises NotAuthenticated), who is then named in the request's log
    line. The compatibility API calls it with its `?token=` value."""
    user_id = tokens.verify(token)
    remember_user(request, user_id)
    return user_id


def authenticated_user(request: Request, tokens: TokenService) -> int:
    return verified_user(request, tokens, bearer_token(request))
