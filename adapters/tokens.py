from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta

import jwt
from cachetools import LRUCache

from application.ports import Clock, IssuedToken, TokenService, TokenSubject
from domain.errors import NotAuthenticated
from domain.ports import MAX_ID
from domain.sessions import Session

ALGORITHM = "HS256"
ISSUER = "hexpost"
AUDIENCE = "hexpost:api"


class JwtTokenService(TokenService):
    """HS256 access tokens. Verification allows no other algorithm and requires exp, iat, sub and sid.

    A token verifies the same way every time until it expires, so tokens that passed are kept (up
    to `remembered` of them) with their expiry: a client's next requests skip the decoding, which
    is most of the work of a cached get-posts. Expiry is checked against `wall_clock`, the time
    pyjwt checks it against too. Remembering says nothing about the token's session: that is
    checked on every request by the caller of `verify`.
    """

    def __init__(
        self,
        secret: str,
        ttl_seconds: int,
        clock: Clock,
        remembered: int = 4096,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._clock = clock
        self._verified: LRUCache[str, tuple[TokenSubject, float]] = LRUCache(maxsize=remembered)
        self._wall_clock = wall_clock

    def issue(self, user_id: int, session_id: str) -> IssuedToken:
        now = self._clock.now()
        claims = {
            "sub": str(user_id),
            "sid": session_id,
            "iat": now,
            "exp": now + timedelta(seconds=self._ttl),
            "jti": uuid.uuid4().hex,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), self._ttl)

    def verify(self, token: str) -> TokenSubject:
        # Indexing, not `get`, which looks the token up twice.
        try:
            subject, expires_at = self._verified[token]
        except KeyError:
            pass
        else:
            if self._wall_clock() < expires_at:
                return subject
            del self._verified[token]
            raise NotAuthenticated("Token has expired")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("Token has expired") from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated from None
        user, session_id = claims["sub"], claims["sid"]
        if not isinstance(user, str) or not (user.isascii() and user.isdigit()):
            raise NotAuthenticated
        user_id = int(user[:20])
        if str(user_id) != user or user_id > MAX_ID:
            raise NotAuthenticated
        if not isinstance(session_id, str) or not 0 < len(session_id) <= Session.ID_MAX_LENGTH:
            raise NotAuthenticated
        subject = TokenSubject(user_id, session_id)
        self._verified[token] = (subject, float(claims["exp"]))
        return subject
