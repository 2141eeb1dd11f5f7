from __future__ import annotations

import uuid
from datetime import timedelta

import jwt

from domain.errors import NotAuthenticated
from domain.ports import MAX_ID, Clock, IssuedToken, TokenService

ALGORITHM = "HS256"
ISSUER = "hexpost"
AUDIENCE = "hexpost:api"


class JwtTokenService(TokenService):
    """HS256 access tokens. Verification allows no other algorithm and requires exp, iat and sub."""

    def __init__(self, secret: str, ttl_seconds: int, clock: Clock) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._clock = clock

    def issue(self, user_id: int) -> IssuedToken:
        now = self._clock.now()
        claims = {
            "sub": str(user_id),
            "iat": now,
            "exp": now + timedelta(seconds=self._ttl),
            "jti": uuid.uuid4().hex,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), self._ttl)

    def verify(self, token: str) -> int:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("Token has expired") from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not (subject.isascii() and subject.isdigit()):
            raise NotAuthenticated
        user_id = int(subject[:20])
        if str(user_id) != subject or user_id > MAX_ID:
            raise NotAuthenticated
        return user_id
