"""Reading requests at the edge: media types, JSON bodies validated by pydantic models, forms, ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Scope

from domain.ports import MAX_ID
from entrypoints.http.errors import RequestValidationError, field_error
from entrypoints.http.wire import JSON_MEDIA_TYPE

M = TypeVar("M", bound=BaseModel)


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of the request header `name` (in lower case), as Starlette's `Headers`
    gives it, without making a Request."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def media_type(request: Request) -> str | None:
    header = request.headers.get("content-type")
    if header is None:
        return None
    return header.split(";", 1)[0].strip().lower()


def unsupported(expected: str) -> HTTPException:
    return HTTPException(415, f"Unsupported media type: send {expected}")


def _fastapi_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"type": error["type"], "loc": ["body", *error["loc"]], "msg": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def parse_json(model: type[M], body: bytes) -> M:
    if not body.strip():
        raise field_error(["body"], "Field required", kind="missing")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(_fastapi_errors(exc)) from None


async def json_body(request: Request, model: type[M]) -> M:
    """The body as `model`: 415 unless it is JSON (or untyped), 422 unless it validates."""
    if media_type(request) not in (None, JSON_MEDIA_TYPE):
        raise unsupported(JSON_MEDIA_TYPE)
    return parse_json(model, await request.body())


async def form_fields(
    request: Request, names: Sequence[str], blank_is_missing: bool = False
) -> dict[str, str]:
    """Text fields of a urlencoded or multipart form; 422 naming every one missing (with
    `blank_is_missing`, an empty value counts as missing, as in FastAPI's `Form()`)."""
    try:
        # Files are allowed as far as one per expected field, so that a file where text belongs is
        # the 422 below rather than starlette's 400 "Too many files"; they are closed at once.
        async with request.form(max_files=len(names), max_fields=len(names) + 16) as form:
            pass
    except MultiPartException as exc:
        raise HTTPException(400, f"Malformed form: {exc.message}") from None
    values: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for name in names:
        value = form.get(name)
        if blank_is_missing and value == "":
            value = None
        if isinstance(value, str):
            values[name] = value
        elif value is None:
            errors.append({"type": "missing", "loc": ["body", name], "msg": "Field required"})
        else:
            assert isinstance(value, UploadFile)
            errors.append(
                {
                    "type": "string_type",
                    "loc": ["body", name],
                    "msg": "Input should be a valid string",
                }
            )
    if errors:
        raise RequestValidationError(errors)
    return values


def resource_id(raw: str, location: Sequence[str]) -> int | None:
    """An id from a path or query string: 422 unless it is an integer; None for one that no row
    can have."""
    text = raw.strip()
    digits = text.removeprefix("-").removeprefix("+")
    if not digits.isascii() or not digits.isdigit():
        raise field_error(
            location,
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
        )
    if text.startswith("-") or len(digits) > len(str(MAX_ID)):
        return None
    return known_id(int(digits))


def known_id(value: int) -> int | None:
    """`value` if a row can have it as its id, else None."""
    return value if 0 < value <= MAX_ID else None


def query_value(request: Request, name: str) -> str:
    """A required query parameter (the last one when repeated); 422 at ("query", name) when absent."""
    value = request.query_params.get(name)
    if value is None:
        raise field_error(["query", name], "Field required", kind="missing")
    return value


def client_address(request: Request) -> str:
    """The TCP peer, or the client a trusted proxy reported (ProxyHeadersMiddleware, configured by
    HEXPOST_FORWARDED_ALLOW_IPS, has already put it in the scope)."""
    return request.client.host if request.client else "unknown"
