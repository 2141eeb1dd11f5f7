"""The compatibility API (README-A, fastapi-users style): the routes and wire format of the old service,
over the same use cases and storage as the canonical API.

Post routes take the token as a `token` query parameter instead of an Authorization header. Its value is
never logged or echoed: nothing here logs, and the error answers never carry request input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from domain.errors import InvalidCredentials, InvalidEmail, PostNotFound
from domain.posts import Post
from domain.users import Password, User
from entrypoints.http.auth import caller
from entrypoints.http.openapi import (
    FORM_MEDIA_TYPE,
    IF_NONE_MATCH,
    JSON_MEDIA_TYPE,
    LIST_HEADERS,
    LOGIN_THROTTLED,
    NOT_MODIFIED,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    UNAUTHENTICATED_BY_QUERY,
    UNAVAILABLE,
    UNPROCESSABLE,
    DocumentedRoute,
    ErrorResponse,
    Operation,
    Parameter,
    Reply,
    with_body_errors,
)
from entrypoints.http.parsing import (
    FORM_MEDIA_TYPES,
    RequestBody,
    client_address,
    form_fields,
    json_body,
    known_id,
    media_type,
    query_value,
    unsupported,
)
from entrypoints.http.responses import JSON, posts_json
from entrypoints.http.use_cases import UseCases
from entrypoints.http.wire import TIMESTAMP_FORMAT, EmailField, json_array_piece

TOKEN_PARAMETER = "token"


class UserCreate(RequestBody):
    email: EmailField
    password: Annotated[str, Field(min_length=Password.MIN_LENGTH, max_length=Password.MAX_LENGTH)]


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


class BearerResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"


class AddPostBody(RequestBody):
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


class DeletePostBody(RequestBody):
    # Lax like FastAPI's `int` otherwise ("12" is 12); ids no row can have delete nothing.
    Post_ID: Annotated[int, BeforeValidator(_not_a_boolean)]


class DetailResponse(BaseModel):
    detail: str


class CompatPostsRenderer:
    view = "compat"

    def render(self, owner: User, posts: Sequence[Post], *, first: bool, last: bool) -> bytes:
        # PostRead's fields, as plain dicts: a page may hold hundreds of posts.
        return json_array_piece(
            [
                {
                    "Post_ID": post.id,
                    "Post_Text": post.text.value,
                    "User_Email": owner.email.value,
                    "Creation_DateTime": post.created_at.strftime(TIMESTAMP_FORMAT),
                }
                for post in posts
            ],
            first=first,
            last=last,
        )


class CompatApi:
    def __init__(self, use_cases: UseCases) -> None:
        self._use = use_cases
        self._renderer = CompatPostsRenderer()

    async def _caller(self, request: Request) -> int:
        token = query_value(request, TOKEN_PARAMETER)
        return (await caller(request, self._use.resolve_caller, token)).user_id

    async def register(self, request: Request) -> Response:
        body = await json_body(request, UserCreate)
        registered = await self._use.register_user.execute(body.email, body.password, client_address(request))
        return JSON(UserRead(id=registered.user_id, email=registered.email), 201)

    async def login(self, request: Request) -> Response:
        # fastapi-users' OAuth2 password form; with no Content-Type it is an empty form (422).
        if media_type(request) not in (None, *FORM_MEDIA_TYPES):
            raise unsupported(" or ".join(FORM_MEDIA_TYPES))
        fields = await form_fields(request, tuple(LoginForm.model_fields), blank_is_missing=True)
        try:
            token = await self._use.log_in.execute(
                fields["username"], fields["password"], client_address(request)
            )
        except InvalidEmail:
            # fastapi-users answers a username that is no email like any failed login. No account
            # can have such an address, so the quicker answer tells nothing about accounts.
            raise InvalidCredentials from None
        return JSON(BearerResponse(access_token=token.value))

    async def add_post(self, request: Request) -> Response:
        user_id = await self._caller(request)
        body = await json_body(request, AddPostBody)
        post_id = await self._use.add_post.execute(user_id, body.Post_Text)
        return JSON(AddPostResponse(Post_ID=post_id))

    async def get_posts(self, request: Request) -> Response:
        user_id = await self._caller(request)
        result = await self._use.get_posts.execute(user_id, self._renderer)
        return posts_json(result, request)

    async def delete_post(self, request: Request) -> Response:
        """Success also when the caller has no such post (README-A): COMPAT_ERRORS answers
        PostNotFound so."""
        user_id = await self._caller(request)
        body = await json_body(request, DeletePostBody)
        post_id = known_id(body.Post_ID)
        if post_id is None:
            raise PostNotFound
        await self._use.delete_post.execute(user_id, post_id)
        return JSON(DetailResponse(detail="Success"))

    def auth_routes(self) -> list[BaseRoute]:
        """Mounted at /auth."""
        return [
            DocumentedRoute("/register", self.register, "POST", REGISTER),
            DocumentedRoute("/login", self.login, "POST", LOGIN),
        ]

    def posts_routes(self) -> list[BaseRoute]:
        """Mounted at /posts."""
        return [
            DocumentedRoute("/AddPost", self.add_post, "POST", ADD_POST),
            DocumentedRoute("/GetPosts", self.get_posts, "GET", GET_POSTS),
            DocumentedRoute("/DeletePost", self.delete_post, "POST", DELETE_POST),
        ]


TAGS = ("compatibility API",)
TOKEN = Parameter(TOKEN_PARAMETER, "query", "The access token from `/auth/login`.")

REGISTER = Operation(
    "compat_register",
    "Register a user",
    TAGS,
    with_body_errors(
        {
            201: Reply("Registered.", UserRead),
            400: Reply("`REGISTER_USER_ALREADY_EXISTS`", ErrorResponse),
            429: RATE_LIMITED,
        }
    ),
    body={JSON_MEDIA_TYPE: UserCreate},
)
LOGIN = Operation(
    "compat_login",
    "Log in with the OAuth2 password form (username = email)",
    TAGS,
    with_body_errors(
        {
            200: Reply("Logged in.", BearerResponse),
            400: Reply("`LOGIN_BAD_CREDENTIALS`, or a form that could not be parsed.", ErrorResponse),
            429: LOGIN_THROTTLED,
        }
    ),
    body={FORM_MEDIA_TYPE: LoginForm},
)
ADD_POST = Operation(
    "compat_add_post",
    "Add a post (its text at most 1 MB in UTF-8)",
    TAGS,
    with_body_errors(
        {
            200: Reply("Created.", AddPostResponse),
            401: UNAUTHENTICATED_BY_QUERY,
            403: QUOTA_EXCEEDED,
            413: Reply("The text, or the whole body, is too large.", ErrorResponse),
            429: RATE_LIMITED,
        }
    ),
    body={JSON_MEDIA_TYPE: AddPostBody},
    parameters=(TOKEN,),
)
GET_POSTS = Operation(
    "compat_get_posts",
    "List the caller's posts, oldest first (cached for up to 5 minutes)",
    TAGS,
    {
        200: Reply("The caller's posts.", list[PostRead], LIST_HEADERS),
        304: NOT_MODIFIED,
        401: UNAUTHENTICATED_BY_QUERY,
        422: UNPROCESSABLE,
        503: UNAVAILABLE,
    },
    parameters=(TOKEN, IF_NONE_MATCH),
)
DELETE_POST = Operation(
    "compat_delete_post",
    "Delete one of the caller's posts",
    TAGS,
    with_body_errors(
        {
            200: Reply("Deleted, or the caller had no such post.", DetailResponse),
            401: UNAUTHENTICATED_BY_QUERY,
        }
    ),
    body={JSON_MEDIA_TYPE: DeletePostBody},
    parameters=(TOKEN,),
)
