from __future__ import annotations

from starlette.requests import Request

from domain.errors import NotAuthenticated
from domain.ports import TokenService


def bearer_token(request: Request) -> str:
    """The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive."""
    header = request.headers.get("authorization")
    if not header:
        raise NotAuthenticated("Not authenticated")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Not authenticated")
    return token.strip()


def authenticated_user(request: Request, tokens: TokenService) -> int:
    return tokens.verify(bearer_token(request))
