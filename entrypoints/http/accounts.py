"""The canonical API's sessions and account routes (contract section 5), mounted at /api/v1 beside
the routes of `canonical`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from application.callers import Caller
from application.sessions import SignedIn
from domain.errors import InvalidPassword
from domain.sessions import Session
from domain.users import Password
from entrypoints.http.auth import bearer_token, caller
from entrypoints.http.canonical import POSTS_SECURITY, REFRESH_LINK, TAGS
from entrypoints.http.errors import field_error
from entrypoints.http.openapi import (
    RETRY_AFTER,
    UNAUTHENTICATED,
    UNAVAILABLE,
    DocumentedMethods,
    DocumentedRoute,
    ErrorResponse,
    Operation,
    Parameter,
    Reply,
    with_body_errors,
)
from entrypoints.http.parsing import client_address, json_body
from entrypoints.http.responses import JSON
from entrypoints.http.use_cases import UseCases
from entrypoints.http.wire import JSON_MEDIA_TYPE, TIMESTAMP_FORMAT, RequestBody

NewPasswordField = Annotated[str, Field(min_length=Password.MIN_LENGTH, max_length=Password.MAX_LENGTH)]


class RefreshRequest(RequestBody):
    refresh_token: Annotated[str, Field(min_length=1)]


class SessionTokensResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class AccountResponse(BaseModel):
    id: int
    email: str
    created_at: str


class SessionResponse(BaseModel):
    id: str
    created_at: str
    last_used_at: str
    current: bool


class ChangePasswordRequest(RequestBody):
    current_password: str
    new_password: NewPasswordField


class DeleteAccountRequest(RequestBody):
    password: str


def session_tokens(signed_in: SignedIn) -> SessionTokensResponse:
    return SessionTokensResponse(
        access_token=signed_in.access.value,
        expires_in=signed_in.access.expires_in,
        refresh_token=signed_in.refresh.value,
        refresh_expires_in=signed_in.refresh.expires_in,
    )


class AccountsApi:
    def __init__(self, use_cases: UseCases) -> None:
        self._use = use_cases

    async def _caller(self, request: Request) -> Caller:
        return await caller(
            request.scope, self._use.resolve_caller, bearer_token(request.headers.get("authorization"))
        )

    async def refresh(self, request: Request) -> Response:
        body = await json_body(request, RefreshRequest)
        return JSON(
            session_tokens(
                await self._use.refresh_session.execute(body.refresh_token, client_address(request))
            )
        )

    async def logout(self, request: Request) -> Response:
        caller = await self._caller(request)
        await self._use.end_session.execute(caller, caller.session_id)
        return Response(status_code=204)

    async def me(self, request: Request) -> Response:
        account = await self._use.get_account.execute(await self._caller(request))
        return JSON(
            AccountResponse(
                id=account.id, email=account.email, created_at=account.created_at.strftime(TIMESTAMP_FORMAT)
            )
        )

    async def sessions(self, request: Request) -> Response:
        listed = await self._use.list_sessions.execute(await self._caller(request))
        return JSON(
            [
                SessionResponse(
                    id=session.id,
                    created_at=session.created_at.strftime(TIMESTAMP_FORMAT),
                    last_used_at=session.last_used_at.strftime(TIMESTAMP_FORMAT),
                    current=session.current,
                )
                for session in listed
            ]
        )

    async def end_session(self, request: Request) -> Response:
        caller = await self._caller(request)
        await self._use.end_session.execute(caller, request.path_params["session_id"])
        return Response(status_code=204)

    async def end_all_sessions(self, request: Request) -> Response:
        await self._use.end_all_sessions.execute(await self._caller(request))
        return Response(status_code=204)

    async def change_password(self, request: Request) -> Response:
        caller = await self._caller(request)
        body = await json_body(request, ChangePasswordRequest)
        try:
            await self._use.change_password.execute(
                caller, body.current_password, body.new_password, client_address(request)
            )
        except InvalidPassword as exc:
            raise field_error(["body", "new_password"], str(exc)) from None
        return Response(status_code=204)

    async def delete_account(self, request: Request) -> Response:
        caller = await self._caller(request)
        body = await json_body(request, DeleteAccountRequest)
        await self._use.delete_account.execute(caller, body.password, client_address(request))
        return Response(status_code=204)

    def routes(self) -> list[BaseRoute]:
        return [
            DocumentedRoute("/users/refresh", self.refresh, "POST", REFRESH),
            DocumentedRoute("/users/logout", self.logout, "POST", LOGOUT),
            DocumentedMethods(
                "/users/me",
                [
                    DocumentedRoute("/users/me", self.me, "GET", ME),
                    DocumentedRoute("/users/me", self.delete_account, "DELETE", DELETE_ACCOUNT),
                ],
            ),
            DocumentedRoute("/users/me/password", self.change_password, "PUT", CHANGE_PASSWORD),
            DocumentedMethods(
                "/users/me/sessions",
                [
                    DocumentedRoute("/users/me/sessions", self.sessions, "GET", SESSIONS),
                    DocumentedRoute("/users/me/sessions", self.end_all_sessions, "DELETE", END_ALL_SESSIONS),
                ],
            ),
            DocumentedRoute("/users/me/sessions/{session_id}", self.end_session, "DELETE", END_SESSION),
        ]


ENDED = Reply("Done; the session's tokens are refused from the next request on.")
TOO_MANY_REFRESHES = Reply("Too many refreshes from this address.", ErrorResponse, (RETRY_AFTER,))
TOO_MANY_FAILURES = Reply(
    "Too many failed password checks (they count as failed logins).", ErrorResponse, (RETRY_AFTER,)
)
WRONG_PASSWORD = Reply("`Invalid password`: the current password does not match.", ErrorResponse)

REFRESH = Operation(
    "refresh",
    "Exchange a refresh token for new tokens (each refresh token works once)",
    TAGS,
    with_body_errors(
        {
            200: Reply(
                "New tokens; the refresh token sent is used up.", SessionTokensResponse, links=REFRESH_LINK
            ),
            401: Reply(
                "`Invalid refresh token`: unknown, expired, or of an ended session. One that was "
                "already used also ends its session.",
                ErrorResponse,
            ),
            429: TOO_MANY_REFRESHES,
        }
    ),
    body={JSON_MEDIA_TYPE: RefreshRequest},
)
LOGOUT = Operation(
    "logout",
    "End the current session",
    TAGS,
    {204: ENDED, 401: UNAUTHENTICATED, 503: UNAVAILABLE},
    security=POSTS_SECURITY,
)
ME = Operation(
    "me",
    "The caller's account",
    TAGS,
    {200: Reply("The account.", AccountResponse), 401: UNAUTHENTICATED, 503: UNAVAILABLE},
    security=POSTS_SECURITY,
)
SESSIONS = Operation(
    "list_sessions",
    "The caller's live sessions, most recently used first",
    TAGS,
    {
        200: Reply(
            "The sessions; `current` marks the one of this request.",
            list[SessionResponse],
            links={
                "end_session": {
                    "operationId": "end_session",
                    "parameters": {"session_id": "$response.body#/0/id"},
                }
            },
        ),
        401: UNAUTHENTICATED,
        503: UNAVAILABLE,
    },
    security=POSTS_SECURITY,
)
END_SESSION = Operation(
    "end_session",
    "End one of the caller's sessions",
    TAGS,
    {
        204: ENDED,
        401: UNAUTHENTICATED,
        404: Reply("No live session of the caller's has this id.", ErrorResponse),
        503: UNAVAILABLE,
    },
    parameters=(
        Parameter(
            "session_id",
            "path",
            "A session id from the list of sessions.",
            {"type": "string", "maxLength": Session.ID_MAX_LENGTH},
        ),
    ),
    security=POSTS_SECURITY,
)
END_ALL_SESSIONS = Operation(
    "end_all_sessions",
    "Log out everywhere: end every session of the caller, this one included",
    TAGS,
    {204: ENDED, 401: UNAUTHENTICATED, 503: UNAVAILABLE},
    security=POSTS_SECURITY,
)
CHANGE_PASSWORD = Operation(
    "change_password",
    "Change the password; every other session of the caller ends",
    TAGS,
    with_body_errors(
        {204: Reply("Changed."), 400: WRONG_PASSWORD, 401: UNAUTHENTICATED, 429: TOO_MANY_FAILURES}
    ),
    body={JSON_MEDIA_TYPE: ChangePasswordRequest},
    security=POSTS_SECURITY,
)
DELETE_ACCOUNT = Operation(
    "delete_account",
    "Delete the account with all its posts and sessions",
    TAGS,
    with_body_errors(
        {204: Reply("Deleted."), 400: WRONG_PASSWORD, 401: UNAUTHENTICATED, 429: TOO_MANY_FAILURES}
    ),
    body={JSON_MEDIA_TYPE: DeleteAccountRequest},
    security=POSTS_SECURITY,
)
