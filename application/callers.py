from __future__ import annotations

import attrs

from application.ports import ConfirmedCallers, TokenService
from domain.errors import NotAuthenticated
from domain.ports import UnitOfWorkFactory


@attrs.frozen
class Caller:
    """Who a request acts for, resolved once at the edge before any use case runs."""

    user_id: int


class ResolveCaller:
    """A token names a caller while it verifies and its user is in the store; otherwise the request
    is not authenticated, whatever route it is for. The store is asked only when `confirmed` has no
    recent word on that user."""

    def __init__(self, tokens: TokenService, uow: UnitOfWorkFactory, confirmed: ConfirmedCallers) -> None:
        self._tokens = tokens
        self._uow = uow
        self._confirmed = confirmed

    async def execute(self, token: str) -> Caller:
        user_id = self._tokens.verify(token)
        if not await self._confirmed.recently_confirmed(user_id):
            async with self._uow() as uow:
                user = await uow.users.get(user_id)
            if user is None:
                raise NotAuthenticated
            await self._confirmed.confirm(user_id)
        return Caller(user_id)
