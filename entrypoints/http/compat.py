"""The compatibility API (README-A, fastapi-users style): the routes and wire format of the old service,
over the same use cases and storage as the canonical API.

Post routes take the token as a `token` query parameter instead of an Authorization header. Its value is
never logged or echoed: nothing here logs, and the error answers never carry request input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from domain.errors import (
    InvalidCredentials,
    InvalidEmail,
)
from domain.posts import Post
from domain.users import User
from entrypoints.http import openapi, wire
from entrypoints.http.auth import caller, caller_with_posts
from entrypoints.http.errors import Answer, ErrorTable, worded
from entrypoints.http.parsing import (
    client_address,
    form_fields,
    json_body,
    known_id,
    media_type,
    query_value,
    unsupported,
)
from entrypoints.http.responses import JSON, posts_json
from entrypoints.http.use_cases import Api

TOKEN_PARAMETER = "token"


class LoginForm(BaseModel):
    """fastapi-users' OAuth2 password form; `username` is the email. A blank field is a missing one."""

    username: Annotated[str, Field(min_length=1)]
    password: Annotated[str, Field(min_length=1)]


class UserRead(BaseModel):
    id: int
    email: str
    is_active: bool = True
    is_superuser: bool = False
    is_verified: bool = False


class AddPostBody(wire.RequestBody):
    Post_Text: Annotated[str, Field(min_length=1)]


class AddPostResponse(BaseModel):
    Post_ID: int


class PostRead(BaseModel):
    Post_ID: int
    Post_Text: str
    User_Email: str
    Creation_DateTime: str


def _not_a_boolean(value: object) -> object:
    # pydantic's lax int takes true for 1: that would delete post 1.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


class DeletePostBody(wire.RequestBody):
    # Lax like FastAPI's `int` otherwise ("12" is 12); ids no row can have delete nothing.
    Post_ID: Annotated[int, BeforeValidator(_not_a_boolean)]


class DetailResponse(BaseModel):
    detail: str


class CompatPostsRenderer:
    # Names the bytes `render` produces in the cache: change it whenever they change.
    view = "compat.1"

    def render(self, owner: User, posts: Sequence[Post], *, first: bool, last: bool) -> Iterator[bytes]:
        # PostRead's fields, as plain dicts: a page may hold hundreds of posts.
        return wire.json_array_piece(
            [
                {
                    "Post_ID": post.id,
                    "Post_Text": post.text.value,
                    "User_Email": owner.email.value,
                    "Creation_DateTime": wire.timestamp(post),
                }
                for post in posts
            ],
            first=first,
            last=last,
        )


class CompatApi(Api):
    _renderer = CompatPostsRenderer()

    async def _caller(self, request: Request) -> int:
        token = query_value(request, TOKEN_PARAMETER)
        return (await caller(request.scope, self._use.resolve_caller, token)).user_id

    async def register(self, request: Request) -> Response:
        body = await json_body(request, wire.RegisterRequest)
        # README-A's registration signs nobody in: no session is started.
        registered = await self._use.register_user.execute(
            body.email, body.password, client_address(request), sign_in=False
        )
        return JSON(UserRead(id=registered.user_id, email=registered.email), 201)

    async def login(self, request: Request) -> Response:
        # fastapi-users' OAuth2 password form; with no Content-Type it is an empty form (422).
        if media_type(request) not in (None, *wire.FORM_MEDIA_TYPES):
            raise unsupported(" or ".join(wire.FORM_MEDIA_TYPES))
        fields = await form_fields(request, tuple(LoginForm.model_fields), blank_is_missing=True)
        try:
            signed_in = await self._use.log_in.execute(
                fields["username"], fields["password"], client_address(request)
            )
        except InvalidEmail:
            # fastapi-users answers a username that is no email like any failed login. No account
            # can have such an address, so the quicker answer tells nothing about accounts.
            raise InvalidCredentials from None
        # README-A's answer has no refresh token: a session started here ends by expiry, or from
        # the canonical API.
        return JSON(wire.BearerResponse(access_token=signed_in.access.value))

    async def add_post(self, request: Request) -> Response:
        user_id = await self._caller(request)
        body = await json_body(request, AddPostBody)
        post_id = await self._use.add_post.execute(user_id, body.Post_Text)
        return JSON(AddPostResponse(Post_ID=post_id))

    async def get_posts(self, request: Request) -> Response:
        token = query_value(request, TOKEN_PARAMETER)
        resolved, cached = await caller_with_posts(
            request.scope, self._use.resolve_caller, token, self._renderer.view
        )
        result = await self._use.get_posts.execute(resolved.user_id, self._renderer, cached=cached)
        return posts_json(result, request.headers.get("if-none-match"))

    async def delete_post(self, request: Request) -> Response:
        """Success also when the caller has no such post (README-A); nothing is deleted then."""
        user_id = await self._caller(request)
        body = await json_body(request, DeletePostBody)
        post_id = known_id(body.Post_ID)
        if post_id is not None:
            await self._use.delete_post.execute(user_id, post_id)
        return JSON(DetailResponse(detail="Success"))

    def auth_routes(self) -> list[BaseRoute]:
        """Mounted at /auth."""
        return [
            openapi.DocumentedRoute("/register", self.register, "POST", REGISTER),
            openapi.DocumentedRoute("/login", self.login, "POST", LOGIN),
        ]

    def posts_routes(self) -> list[BaseRoute]:
        """Mounted at /posts."""
        created = openapi.Reply("Created.", AddPostResponse)
        add_post = openapi.add_post_operation(
            "compat_add_post", TAGS, AddPostBody, created, CALLER, self._limits
        )
        get_posts = openapi.get_posts_operation("compat_get_posts", TAGS, PostRead, CALLER, self._limits)
        return [
            openapi.DocumentedRoute("/AddPost", self.add_post, "POST", add_post),
            openapi.DocumentedRoute("/GetPosts", self.get_posts, "GET", get_posts),
            openapi.DocumentedRoute("/DeletePost", self.delete_post, "POST", DELETE_POST),
        ]


TAGS = ("compatibility API",)
TOKEN = openapi.Parameter(TOKEN_PARAMETER, "query", "The access token from `/auth/login`.")
CALLER = openapi.Authentication(openapi.UNAUTHENTICATED_BY_QUERY, parameters=(TOKEN,))
ALREADY_EXISTS = "`REGISTER_USER_ALREADY_EXISTS`"
LOGIN_SUMMARY = "Log in with the OAuth2 password form (username = email)"
BAD_CREDENTIALS = {
    400: openapi.Reply("`LOGIN_BAD_CREDENTIALS`, or a form that could not be parsed.", openapi.ErrorResponse)
}

REGISTER = openapi.register_operation(
    "compat_register", "Register a user", TAGS, openapi.Reply("Registered.", UserRead), ALREADY_EXISTS
)
LOGIN = openapi.login_operation(
    "compat_login",
    LOGIN_SUMMARY,
    TAGS,
    wire.BearerResponse,
    BAD_CREDENTIALS,
    {wire.FORM_MEDIA_TYPE: LoginForm},
)
DELETE_POST = openapi.Operation(
    "compat_delete_post",
    "Delete one of the caller's posts",
    TAGS,
    openapi.with_body_errors(
        {
            200: openapi.Reply("Deleted, or the caller had no such post.", DetailResponse),
            401: openapi.UNAUTHENTICATED_BY_QUERY,
        }
    ),
    body={wire.JSON_MEDIA_TYPE: DeletePostBody},
    parameters=(TOKEN,),
)


def error_table(limits: wire.Limits) -> ErrorTable:
    """README-A's answers, fastapi-users' codes among them."""
    return worded(
        text_field="Post_Text",
        too_large=f"Post_Text size exceeds {limits.post_size}",
        already_exists="REGISTER_USER_ALREADY_EXISTS",
        bad_credentials=Answer(400, "LOGIN_BAD_CREDENTIALS"),
    )
