"""The OpenAPI 3.1 document, generated from the app's routes.

Each route declares its `Operation` where it is defined (`DocumentedRoute`); the schemas come from the
pydantic models the edge validates requests and serializes responses with, so the document cannot
drift from the code. Routes built with `include_in_schema=False` (the docs page itself) stay out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import attrs
from pydantic import BaseModel, TypeAdapter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from entrypoints.http.errors import RETRY_AFTER_SECONDS
from entrypoints.http.wire import JSON_MEDIA_TYPE, Limits, RegisterRequest

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"

BEARER = "BearerAuth"
OAUTH2_PASSWORD = "OAuth2PasswordBearer"
# The route whose form answers the OAuth2 password flow (Swagger UI's Authorize button).
TOKEN_URL = "/api/v1/users/login"


class ErrorResponse(BaseModel):
    """A simple error: `{"detail": "human readable message"}`."""

    detail: str


class ValidationErrorItem(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ValidationErrorResponse(BaseModel):
    """A request that does not validate: 422 with one item per problem."""

    detail: list[ValidationErrorItem]


@attrs.frozen
class Header:
    name: str
    description: str
    schema: Mapping[str, Any] = attrs.field(factory=lambda: {"type": "string"})


@attrs.frozen
class Reply:
    """One response of an operation. `body` is the type its body has (JSON unless `media_type`
    says otherwise); None: no body."""

    description: str
    body: Any = None
    headers: Sequence[Header] = ()
    media_type: str = JSON_MEDIA_TYPE
    # OpenAPI links: what a client (or a stateful fuzzer) may do next with this answer.
    links: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


@attrs.frozen
class Parameter:
    name: str
    location: Literal["query", "path", "header"]
    description: str
    schema: Mapping[str, Any] = attrs.field(factory=lambda: {"type": "string"})
    required: bool = True


@attrs.frozen
class Operation:
    """What the document says about one route and method. `body` maps each accepted media type to
    the type its content validates as."""

    operation_id: str
    summary: str
    tags: Sequence[str]
    responses: Mapping[int, Reply]
    body: Mapping[str, Any] = attrs.field(factory=dict)
    parameters: Sequence[Parameter] = ()
    security: Sequence[str] = ()
    description: str | None = None


@attrs.frozen
class Authentication:
    """How an API's post routes take the caller's token, and what they answer without a good one."""

    unauthenticated: Reply
    parameters: Sequence[Parameter] = ()
    security: Sequence[str] = ()


class DocumentedRoute(Route):
    """A route of one method that carries its own `Operation`."""

    def __init__(self, path: str, endpoint: Callable[..., Any], method: str, operation: Operation) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method.upper()
        self.operation = operation


class DocumentedMethods(Route):
    """One path served by several `DocumentedRoute`s, one per method, so that a request with any
    other method is answered 405 with all of them in `Allow`."""

    def __init__(self, path: str, routes: Sequence[DocumentedRoute]) -> None:
        by_method = {route.method: route.endpoint for route in routes}

        async def endpoint(request: Request) -> Response:
            # Starlette answers HEAD with the GET endpoint.
            response: Response = await by_method.get(request.method, by_method["GET"])(request)
            return response

        super().__init__(path, endpoint, methods=list(by_method))
        self.routes = list(routes)


# Answers the HTTP edge gives on many routes.
RETRY_AFTER = Header("Retry-After", f"Seconds to wait before retrying ({RETRY_AFTER_SECONDS}).")
WWW_AUTHENTICATE = Header("WWW-Authenticate", "The scheme to authenticate with: `Bearer`.")
X_CACHE = Header(
    "X-Cache",
    "Whether the list came from the cache.",
    {"type": "string", "enum": ["hit", "miss"]},
)
# Conditional GET of a list (RFC 9110 section 13.1.2).
ETAG = Header(
    "ETag",
    "The list's entity tag: any write of the owner changes it. Opaque; reveals nothing but a version.",
)
CACHE_CONTROL = Header(
    "Cache-Control",
    "`private, no-cache`: a client may keep the list but must revalidate it (If-None-Match) before use.",
    {"type": "string", "const": "private, no-cache"},
)
IF_NONE_MATCH = Parameter(
    "If-None-Match",
    "header",
    "ETags of lists the client holds (or `*`); when one is current the answer is 304 without a body.",
    required=False,
)
LIST_HEADERS = (X_CACHE, ETAG, CACHE_CONTROL)
NOT_MODIFIED = Reply("The list named in If-None-Match is current: no body.", None, LIST_HEADERS)
BAD_REQUEST_FORM = Reply("The form could not be parsed.", ErrorResponse)
UNAUTHENTICATED = Reply(
    "Missing, malformed, expired or otherwise invalid token.", ErrorResponse, (WWW_AUTHENTICATE,)
)
UNAUTHENTICATED_BY_QUERY = Reply(
    "Malformed, expired or otherwise invalid `token`.", ErrorResponse, (WWW_AUTHENTICATE,)
)
BODY_TOO_LARGE = Reply("The request body exceeds the server's cap.", ErrorResponse)
UNSUPPORTED_MEDIA_TYPE = Reply("The body is not of a media type this route accepts.", ErrorResponse)
UNPROCESSABLE = Reply("The request does not validate.", ValidationErrorResponse)
UNAVAILABLE = Reply("A dependency (database, cache) is down; retry shortly.", ErrorResponse, (RETRY_AFTER,))
RATE_LIMITED = Reply(
    "Too many requests of this kind from this client (see the README's abuse protection); retry later.",
    ErrorResponse,
    (Header("Retry-After", "Whole seconds until the limit allows another request.", {"type": "integer"}),),
)
LOGIN_THROTTLED = Reply(
    "Too many failed logins for this account or from this address; retry later. The same answer "
    "whether or not the account exists, given before any password is checked.",
    ErrorResponse,
    RATE_LIMITED.headers,
)
QUOTA_EXCEEDED = Reply(
    "`Post quota exceeded`: the user holds as many posts or bytes as they may.", ErrorResponse
)


def with_body_errors(responses: Mapping[int, Reply]) -> dict[int, Reply]:
    """The answers every route with a body may give besides its own."""
    return {
        413: BODY_TOO_LARGE,
        415: UNSUPPORTED_MEDIA_TYPE,
        422: UNPROCESSABLE,
        503: UNAVAILABLE,
        **responses,
    }


def openapi_document(
    routes: Iterable[BaseRoute], title: str, version: str, description: str = ""
) -> dict[str, Any]:
    documented = sorted(_documented(routes, ""), key=lambda item: item[0])
    types = _schema_types(route.operation for _, route in documented)
    adapters = [(key, mode, TypeAdapter(key)) for key, mode in types]
    schemas, definitions = TypeAdapter.json_schemas(adapters, ref_template=REF_TEMPLATE)

    def schema_of(kind: Any, mode: Literal["validation", "serialization"]) -> Any:
        return schemas[(kind, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for path, route in documented:
        paths.setdefault(path, {})[route.method.lower()] = _operation(route.operation, schema_of)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                OAUTH2_PASSWORD: {
                    "type": "oauth2",
                    "description": "Log in with email (as username) and password.",
                    "flows": {"password": {"tokenUrl": TOKEN_URL, "scopes": {}}},
                },
                BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }


def documented_methods(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path, method) of every route that belongs in the document, documented or not."""
    for route in routes:
        if isinstance(route, Mount):
            yield from documented_methods(route.routes, prefix + route.path)
        elif isinstance(route, Route) and route.include_in_schema:
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield _openapi_path(prefix + route.path), method


def _documented(routes: Iterable[BaseRoute], prefix: str) -> Iterator[tuple[str, DocumentedRoute]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _documented(route.routes, prefix + route.path)
        elif isinstance(route, DocumentedRoute) and route.include_in_schema:
            yield _openapi_path(prefix + route.path), route
        elif isinstance(route, DocumentedMethods):
            yield from _documented(route.routes, prefix)


def _openapi_path(path: str) -> str:
    # Starlette's "{post_id:int}" is OpenAPI's "{post_id}".
    return re.sub(r"{([^}:]+):[^}]+}", r"{\1}", path)


def _schema_types(
    operations: Iterable[Operation],
) -> list[tuple[Any, Literal["validation", "serialization"]]]:
    types: list[tuple[Any, Literal["validation", "serialization"]]] = []
    for operation in operations:
        for kind in operation.body.values():
            types.append((kind, "validation"))
        for reply in operation.responses.values():
            if reply.body is not None:
                types.append((reply.body, "serialization"))
    return list(dict.fromkeys(types))


def _operation(operation: Operation, schema_of: Callable[[Any, Any], Any]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": list(operation.tags),
    }
    if operation.description:
        document["description"] = operation.description
    if operation.parameters:
        document["parameters"] = [
            {
                "name": parameter.name,
                "in": parameter.location,
                "required": parameter.required,
                "description": parameter.description,
                "schema": dict(parameter.schema),
            }
            for parameter in operation.parameters
        ]
    if operation.body:
        document["requestBody"] = {
            "required": True,
            "content": {
                media_type: {"schema": schema_of(kind, "validation")}
                for media_type, kind in operation.body.items()
            },
        }
    document["responses"] = {
        str(status): _reply(reply, schema_of) for status, reply in sorted(operation.responses.items())
    }
    if operation.security:
        document["security"] = [{scheme: []} for scheme in operation.security]
    return document


def _reply(reply: Reply, schema_of: Callable[[Any, Any], Any]) -> dict[str, Any]:
    document: dict[str, Any] = {"description": reply.description}
    if reply.headers:
        document["headers"] = {
            header.name: {"description": header.description, "schema": dict(header.schema)}
            for header in reply.headers
        }
    if reply.body is not None:
        document["content"] = {reply.media_type: {"schema": schema_of(reply.body, "serialization")}}
    if reply.links:
        document["links"] = {name: dict(link) for name, link in reply.links.items()}
    return document


def add_post_operation(
    operation_id: str, tags: Sequence[str], body: Any, created: Reply, caller: Authentication, limits: Limits
) -> Operation:
    """Adding a post, as both APIs document it."""
    responses = {
        200: created,
        401: caller.unauthenticated,
        403: QUOTA_EXCEEDED,
        413: Reply("The text, or the whole body, is too large.", ErrorResponse),
        429: RATE_LIMITED,
    }
    return Operation(
        operation_id,
        f"Add a post (its text at most {limits.post_size} in UTF-8)",
        tags,
        with_body_errors(responses),
        {JSON_MEDIA_TYPE: body},
        caller.parameters,
        caller.security,
    )


def get_posts_operation(
    operation_id: str,
    tags: Sequence[str],
    listed: Any,
    caller: Authentication,
    limits: Limits,
    paging: Sequence[Parameter] = (),
    paging_headers: Sequence[Header] = (),
) -> Operation:
    """Listing the caller's posts, as both APIs document it; `paging` where the API has pages."""
    described = "The caller's posts (with `limit`, at most that many)." if paging else "The caller's posts."
    scope = ", all or a page at a time" if paging else ""
    responses = {
        200: Reply(described, list[listed], (*LIST_HEADERS, *paging_headers)),
        304: NOT_MODIFIED,
        401: caller.unauthenticated,
        422: UNPROCESSABLE,
        503: UNAVAILABLE,
    }
    return Operation(
        operation_id,
        f"List the caller's posts, oldest first{scope} (cached for up to {limits.cache_lifetime})",
        tags,
        responses,
        parameters=(*caller.parameters, *paging, IF_NONE_MATCH),
        security=caller.security,
    )


def register_operation(
    operation_id: str, summary: str, tags: Sequence[str], registered: Reply, already_exists: str
) -> Operation:
    """Registering, as both APIs document it: the same body, their own answers."""
    responses = {201: registered, 400: Reply(already_exists, ErrorResponse), 429: RATE_LIMITED}
    return Operation(
        operation_id, summary, tags, with_body_errors(responses), {JSON_MEDIA_TYPE: RegisterRequest}
    )


def login_operation(
    operation_id: str,
    summary: str,
    tags: Sequence[str],
    token: type[BaseModel],
    refusals: Mapping[int, Reply],
    body: Mapping[str, Any],
    links: Mapping[str, Mapping[str, Any]] | None = None,
) -> Operation:
    """Logging in, as both APIs document it: a token, or one of the API's `refusals`."""
    logged_in = Reply("Logged in.", token, links=links or {})
    responses = {200: logged_in, **refusals, 429: LOGIN_THROTTLED}
    return Operation(operation_id, summary, tags, with_body_errors(responses), body)
