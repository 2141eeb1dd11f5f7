"""The canonical API (README-B), mounted at /api/v1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from application.posts import Page
from domain.errors import InvalidEmail, PostNotFound
from domain.posts import Post
from domain.users import Password, User
from entrypoints.http.auth import bearer_token, caller
from entrypoints.http.errors import field_error
from entrypoints.http.openapi import (
    BAD_REQUEST_FORM,
    BEARER,
    FORM_MEDIA_TYPE,
    IF_NONE_MATCH,
    JSON_MEDIA_TYPE,
    LIST_HEADERS,
    LOGIN_THROTTLED,
    NOT_MODIFIED,
    OAUTH2_PASSWORD,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    UNPROCESSABLE,
    DocumentedRoute,
    ErrorResponse,
    Header,
    Operation,
    Parameter,
    Reply,
    with_body_errors,
)
from entrypoints.http.pages import CURSOR_LENGTH, PageCursors, next_link, requested_page
from entrypoints.http.parsing import (
    FORM_MEDIA_TYPES,
    RequestBody,
    client_address,
    form_fields,
    json_body,
    media_type,
    resource_id,
)
from entrypoints.http.responses import JSON, posts_json
from entrypoints.http.use_cases import UseCases
from entrypoints.http.wire import TIMESTAMP_FORMAT, EmailField, json_array_piece


class RegisterRequest(RequestBody):
    email: EmailField
    password: Annotated[str, Field(min_length=Password.MIN_LENGTH, max_length=Password.MAX_LENGTH)]


class LoginRequest(RequestBody):
    email: EmailField
    password: str


class PasswordForm(BaseModel):
    """The OAuth2 password flow's form; `username` is the email."""

    username: EmailField
    password: str


class AddPostRequest(RequestBody):
    text: Annotated[str, Field(min_length=1)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class RegisterResponse(TokenResponse):
    id: int
    email: str


class PostCreatedResponse(BaseModel):
    PostID: int
    detail: str = "Post created"


class PostResponse(BaseModel):
    id: int
    text: str
    created_at: str


class CanonicalPostsRenderer:
    view = "v1"

    def render(self, owner: User, posts: Sequence[Post], *, first: bool, last: bool) -> bytes:
        # PostResponse's fields, as plain dicts: a page may hold hundreds of posts.
        return json_array_piece(
            [
                {
                    "id": post.id,
                    "text": post.text.value,
                    "created_at": post.created_at.strftime(TIMESTAMP_FORMAT),
                }
                for post in posts
            ],
            first=first,
            last=last,
        )


class CanonicalApi:
    def __init__(self, use_cases: UseCases, cursors: PageCursors) -> None:
        self._use = use_cases
        self._cursors = cursors
        self._renderer = CanonicalPostsRenderer()

    async def _caller(self, request: Request) -> int:
        return (await caller(request, self._use.resolve_caller, bearer_token(request))).user_id

    async def register(self, request: Request) -> Response:
        body = await json_body(request, RegisterRequest)
        registered = await self._use.register_user.execute(body.email, body.password, client_address(request))
        token = registered.token
        return JSON(
            RegisterResponse(
                id=registered.user_id,
                email=registered.email,
                access_token=token.value,
                expires_in=token.expires_in,
            ),
            201,
        )

    async def login(self, request: Request) -> Response:
        if media_type(request) in FORM_MEDIA_TYPES:
            # The OAuth2 password flow, so that the docs page's Authorize button works.
            fields = await form_fields(request, tuple(PasswordForm.model_fields))
            email_field, email, password = "username", fields["username"], fields["password"]
        else:
            body = await json_body(request, LoginRequest)
            email_field, email, password = "email", body.email, body.password
        try:
            token = await self._use.log_in.execute(email, password, client_address(request))
        except InvalidEmail as exc:
            raise field_error(["body", email_field], str(exc)) from None
        return JSON(TokenResponse(access_token=token.value, expires_in=token.expires_in))

    async def add_post(self, request: Request) -> Response:
        user_id = await self._caller(request)
        body = await json_body(request, AddPostRequest)
        post_id = await self._use.add_post.execute(user_id, body.text)
        return JSON(PostCreatedResponse(PostID=post_id))

    async def get_posts(self, request: Request) -> Response:
        user_id = await self._caller(request)
        page = requested_page(request, self._cursors, user_id)
        result = await self._use.get_posts.execute(user_id, self._renderer, page)
        link = None
        if page is not None and result.next_after is not None:
            link = next_link(request, self._cursors, user_id, page, result.next_after)
        return posts_json(result, request, link)

    async def delete_post(self, request: Request) -> Response:
        user_id = await self._caller(request)
        post_id = resource_id(request.path_params["post_id"], ["path", "post_id"])
        if post_id is None:
            raise PostNotFound
        await self._use.delete_post.execute(user_id, post_id)
        return Response(status_code=204)

    def routes(self) -> list[BaseRoute]:
        return [
            DocumentedRoute("/users/register", self.register, "POST", REGISTER),
            DocumentedRoute("/users/login", self.login, "POST", LOGIN),
            DocumentedRoute("/posts/add-post", self.add_post, "POST", ADD_POST),
            DocumentedRoute("/posts/get-posts", self.get_posts, "GET", GET_POSTS),
            DocumentedRoute("/posts/delete-post/{post_id}", self.delete_post, "DELETE", DELETE_POST),
        ]


TAGS = ("canonical API",)
POSTS_SECURITY = (OAUTH2_PASSWORD, BEARER)

REGISTER = Operation(
    "register",
    "Register a user and receive a token",
    TAGS,
    with_body_errors(
        {
            201: Reply("Registered; the token is ready to use.", RegisterResponse),
            400: Reply("A user with this email already exists.", ErrorResponse),
            429: RATE_LIMITED,
        }
    ),
    body={JSON_MEDIA_TYPE: RegisterRequest},
)
LOGIN = Operation(
    "login",
    "Log in with JSON, or with the OAuth2 password form (username = email)",
    TAGS,
    with_body_errors(
        {
            200: Reply("Logged in.", TokenResponse),
            400: BAD_REQUEST_FORM,
            404: Reply("Unknown email or wrong password (one answer for both).", ErrorResponse),
            429: LOGIN_THROTTLED,
        }
    ),
    body={JSON_MEDIA_TYPE: LoginRequest, FORM_MEDIA_TYPE: PasswordForm},
)
ADD_POST = Operation(
    "add_post",
    "Add a post (its text at most 1 MB in UTF-8)",
    TAGS,
    with_body_errors(
        {
            200: Reply("Created.", PostCreatedResponse),
            401: UNAUTHENTICATED,
            403: QUOTA_EXCEEDED,
            413: Reply("The text, or the whole body, is too large.", ErrorResponse),
            429: RATE_LIMITED,
        }
    ),
    body={JSON_MEDIA_TYPE: AddPostRequest},
    security=POSTS_SECURITY,
)
LINK = Header(
    "Link",
    'With `limit`, while more posts follow: `<...?limit=N&after=CURSOR>; rel="next"` (RFC 8288).',
)
GET_POSTS = Operation(
    "get_posts",
    "List the caller's posts, oldest first, all or a page at a time (cached for up to 5 minutes)",
    TAGS,
    {
        200: Reply(
            "The caller's posts (with `limit`, at most that many).", list[PostResponse], (*LIST_HEADERS, LINK)
        ),
        304: NOT_MODIFIED,
        401: UNAUTHENTICATED,
        422: UNPROCESSABLE,
        503: UNAVAILABLE,
    },
    parameters=(
        Parameter(
            "limit",
            "query",
            f"Page size, 1 to {Page.MAX_LIMIT}: the first `limit` posts, and a `Link` to the next page "
            "while more follow. Without it, the whole list.",
            {"type": "integer", "minimum": 1, "maximum": Page.MAX_LIMIT},
            required=False,
        ),
        Parameter(
            "after",
            "query",
            "Where the page starts: an opaque cursor from a `Link` header of the caller's own list (with "
            "`limit`). A cursor stays valid when posts are deleted; any other string is 422.",
            {"type": "string", "pattern": f"^[A-Za-z0-9_-]{{{CURSOR_LENGTH}}}$"},
            required=False,
        ),
        IF_NONE_MATCH,
    ),
    security=POSTS_SECURITY,
)
DELETE_POST = Operation(
    "delete_post",
    "Delete one of the caller's posts",
    TAGS,
    {
        204: Reply("Deleted."),
        401: UNAUTHENTICATED,
        404: Reply("No such post of the caller's (someone else's is not found either).", ErrorResponse),
        422: UNPROCESSABLE,
        503: UNAVAILABLE,
    },
    parameters=(Parameter("post_id", "path", "The post's id.", {"type": "integer", "format": "int64"}),),
    security=POSTS_SECURITY,
)
