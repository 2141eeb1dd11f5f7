"""The canonical API (README-B), mounted at /api/v1."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope

from application.posts import Page
from application.sessions import SignedIn
from domain.errors import (
    InvalidEmail,
    InvalidRefreshToken,
    PostNotFound,
    SessionNotFound,
    WrongPassword,
)
from domain.posts import Post
from domain.users import User
from entrypoints.http import openapi, wire
from entrypoints.http.auth import bearer_token, caller, caller_with_posts
from entrypoints.http.errors import BEARER_CHALLENGE, Answer, ErrorTable, field_error, worded
from entrypoints.http.pages import CURSOR_LENGTH, PageCursors, next_link, requested_page
from entrypoints.http.parsing import client_address, form_fields, header, json_body, media_type, resource_id
from entrypoints.http.responses import JSON, posts_json
from entrypoints.http.shortcut import Direct
from entrypoints.http.use_cases import Api, UseCases


class LoginRequest(wire.RequestBody):
    email: wire.EmailField
    password: str


class PasswordForm(BaseModel):
    """The OAuth2 password flow's form; `username` is the email."""

    username: wire.EmailField
    password: str


class AddPostRequest(wire.RequestBody):
    text: Annotated[str, Field(min_length=1)]


class TokenResponse(wire.BearerResponse):
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


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
    # Names the bytes `render` produces in the cache: change it whenever they change.
    view = "canonical.1"

    def render(self, owner: User, posts: Sequence[Post], *, first: bool, last: bool) -> Iterator[bytes]:
        # PostResponse's fields, as plain dicts: a page may hold hundreds of posts.
        return wire.json_array_piece(
            [
                {
                    "id": post.id,
                    "text": post.text.value,
                    "created_at": wire.timestamp(post),
                }
                for post in posts
            ],
            first=first,
            last=last,
        )


def _tokens(signed_in: SignedIn) -> dict[str, Any]:
    return {
        "access_token": signed_in.access.value,
        "expires_in": signed_in.access.expires_in,
        "refresh_token": signed_in.refresh.value,
        "refresh_expires_in": signed_in.refresh.expires_in,
    }


class CanonicalApi(Api):
    _renderer = CanonicalPostsRenderer()

    def __init__(self, use_cases: UseCases, limits: wire.Limits, cursors: PageCursors) -> None:
        super().__init__(use_cases, limits)
        self._cursors = cursors

    async def _caller(self, request: Request) -> int:
        token = bearer_token(request.headers.get("authorization"))
        return (await caller(request.scope, self._use.resolve_caller, token)).user_id

    async def register(self, request: Request) -> Response:
        body = await json_body(request, wire.RegisterRequest)
        registered = await self._use.register_user.execute(body.email, body.password, client_address(request))
        assert registered.signed_in is not None
        return JSON(
            RegisterResponse(id=registered.user_id, email=registered.email, **_tokens(registered.signed_in)),
            201,
        )

    async def login(self, request: Request) -> Response:
        if media_type(request) in wire.FORM_MEDIA_TYPES:
            # The OAuth2 password flow, so that the docs page's Authorize button works.
            fields = await form_fields(request, tuple(PasswordForm.model_fields))
            email_field, email, password = "username", fields["username"], fields["password"]
        else:
            body = await json_body(request, LoginRequest)
            email_field, email, password = "email", body.email, body.password
        try:
            signed_in = await self._use.log_in.execute(email, password, client_address(request))
        except InvalidEmail as exc:
            raise field_error(["body", email_field], str(exc)) from None
        return JSON(TokenResponse(**_tokens(signed_in)))

    async def add_post(self, request: Request) -> Response:
        user_id = await self._caller(request)
        body = await json_body(request, AddPostRequest)
        return JSON(PostCreatedResponse(PostID=await self._use.add_post.execute(user_id, body.text)))

    async def get_posts(self, request: Request) -> Response:
        if "limit" not in request.query_params and "after" not in request.query_params:
            return await self.whole_list(request.scope)
        user_id = await self._caller(request)
        page = requested_page(request, self._cursors, user_id)
        result = await self._use.get_posts.execute(user_id, self._renderer, page)
        link = None
        if page is not None and result.next_after is not None:
            link = next_link(request, self._cursors, user_id, page, result.next_after)
        return posts_json(result, request.headers.get("if-none-match"), link)

    async def whole_list(self, scope: Scope, _receive: Receive | None = None) -> Response:
        """The caller's whole list (the hot path, see `Shortcut`): its cache entry comes with the
        session check."""
        token = bearer_token(header(scope, b"authorization"))
        view = self._renderer.view
        resolved, cached = await caller_with_posts(scope, self._use.resolve_caller, token, view)
        posts = await self._use.get_posts.execute(resolved.user_id, self._renderer, cached=cached)
        return posts_json(posts, header(scope, b"if-none-match"))

    async def delete_post(self, request: Request) -> Response:
        user_id = await self._caller(request)
        post_id = resource_id(request.path_params["post_id"], ["path", "post_id"])
        if post_id is None or not await self._use.delete_post.execute(user_id, post_id):
            raise PostNotFound
        return Response(status_code=204)

    def direct(self, mount: Mount) -> list[Direct]:
        """What most requests are, taken past the router (see `Shortcut`): the whole list, and
        add-post. `mount`: where `routes` are mounted."""
        routes = {route.path: route for route in mount.routes if isinstance(route, Route)}

        async def add_post(scope: Scope, receive: Receive) -> Response:
            return await self.add_post(Request(scope, receive))

        return [
            Direct("GET", mount.path + GET_POSTS_PATH, self.whole_list, routes[GET_POSTS_PATH]),
            Direct("POST", mount.path + ADD_POST_PATH, add_post, routes[ADD_POST_PATH]),
        ]

    def routes(self) -> list[BaseRoute]:
        created = openapi.Reply("Created.", PostCreatedResponse)
        add_post = openapi.add_post_operation("add_post", TAGS, AddPostRequest, created, CALLER, self._limits)
        get_posts = openapi.get_posts_operation(
            "get_posts", TAGS, PostResponse, CALLER, self._limits, PAGING, (LINK,)
        )
        return [
            openapi.DocumentedRoute("/users/register", self.register, "POST", REGISTER),
            openapi.DocumentedRoute("/users/login", self.login, "POST", LOGIN),
            openapi.DocumentedRoute(ADD_POST_PATH, self.add_post, "POST", add_post),
            openapi.DocumentedRoute(GET_POSTS_PATH, self.get_posts, "GET", get_posts),
            openapi.DocumentedRoute("/posts/delete-post/{post_id}", self.delete_post, "DELETE", DELETE_POST),
        ]


TAGS = ("canonical API",)
GET_POSTS_PATH = "/posts/get-posts"
ADD_POST_PATH = "/posts/add-post"
# The next refresh with the token just issued (a stateful fuzzer follows it).
REFRESH_LINK = {
    "refresh": {"operationId": "refresh", "requestBody": {"refresh_token": "$response.body#/refresh_token"}}
}
POSTS_SECURITY = (openapi.OAUTH2_PASSWORD, openapi.BEARER)
CALLER = openapi.Authentication(openapi.UNAUTHENTICATED, security=POSTS_SECURITY)
LINK = openapi.Header(
    "Link",
    'With `limit`, while more posts follow: `<...?limit=N&after=CURSOR>; rel="next"` (RFC 8288).',
)
PAGING = (
    openapi.Parameter(
        "limit",
        "query",
        f"Page size, 1 to {Page.MAX_LIMIT}: the first `limit` posts, and a `Link` to the next page "
        "while more follow. Without it, the whole list.",
        {"type": "integer", "minimum": 1, "maximum": Page.MAX_LIMIT},
        required=False,
    ),
    openapi.Parameter(
        "after",
        "query",
        "Where the page starts: an opaque cursor from a `Link` header of the caller's own list (with "
        "`limit`). A cursor stays valid when posts are deleted; any other string is 422.",
        {"type": "string", "pattern": f"^[A-Za-z0-9_-]{{{CURSOR_LENGTH}}}$"},
        required=False,
    ),
)

REGISTER = openapi.register_operation(
    "register",
    "Register a user and receive a token",
    TAGS,
    openapi.Reply("Registered and signed in, in a new session.", RegisterResponse, links=REFRESH_LINK),
    "A user with this email already exists.",
)
UNKNOWN_OR_WRONG = openapi.Reply(
    "Unknown email or wrong password (one answer for both).", openapi.ErrorResponse
)
LOGIN = openapi.login_operation(
    "login",
    "Log in with JSON, or with the OAuth2 password form (username = email)",
    TAGS,
    TokenResponse,
    {400: openapi.BAD_REQUEST_FORM, 404: UNKNOWN_OR_WRONG},
    {wire.JSON_MEDIA_TYPE: LoginRequest, wire.FORM_MEDIA_TYPE: PasswordForm},
    links=REFRESH_LINK,
)
DELETE_POST = openapi.Operation(
    "delete_post",
    "Delete one of the caller's posts",
    TAGS,
    {
        204: openapi.Reply("Deleted."),
        401: openapi.UNAUTHENTICATED,
        404: openapi.Reply(
            "No such post of the caller's (someone else's is not found either).", openapi.ErrorResponse
        ),
        422: openapi.UNPROCESSABLE,
        503: openapi.UNAVAILABLE,
    },
    parameters=(
        openapi.Parameter("post_id", "path", "The post's id.", {"type": "integer", "format": "int64"}),
    ),
    security=POSTS_SECURITY,
)


def error_table(limits: wire.Limits) -> ErrorTable:
    answers = worded(
        text_field="text",
        too_large=f"Text exceeds {limits.post_size} size limit",
        already_exists="User already exists",
        bad_credentials=Answer(404, "Invalid email or password"),
    )
    return {
        **answers,
        PostNotFound: Answer(404, "Post not found"),
        WrongPassword: Answer(400, "Invalid password"),
        InvalidRefreshToken: Answer(401, "Invalid refresh token", headers=BEARER_CHALLENGE),
        SessionNotFound: Answer(404, "Session not found"),
    }
