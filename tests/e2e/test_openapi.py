"""/openapi.json describes every route, is valid OpenAPI 3.1, and /docs renders it from local assets."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.http.docs import ASSETS, ASSETS_URL
from entrypoints.http.openapi import TOKEN_URL, documented_methods
from tests.http_client import in_process_client

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def app(container: Container) -> Starlette:
    return create_app(container)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hexpost.test") as client:
        yield client


@pytest.fixture
async def document(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_every_route_of_the_app_is_in_the_document_and_nothing_else(
    app: Starlette, document: dict[str, Any]
) -> None:
    served = set(documented_methods(app.routes))
    described = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    assert served == described
    assert ("/api/v1/posts/delete-post/{post_id}", "DELETE") in described
    assert ("/posts/AddPost", "POST") in described


def test_every_operation_documents_its_errors(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert any(status.startswith("2") for status in responses), (method, path)
            if "requestBody" in operation:
                assert {"413", "422"} <= responses.keys(), (method, path)
            if operation.get("security") or any(
                p["name"] == "token" for p in operation.get("parameters", [])
            ):
                assert "401" in responses, (method, path)


def test_errors_have_fastapi_shapes(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ErrorResponse"]["properties"]["detail"]["type"] == "string"
    item = schemas["ValidationErrorResponse"]["properties"]["detail"]["items"]["$ref"]
    assert set(schemas[item.rsplit("/", 1)[1]]["required"]) == {"type", "loc", "msg"}
    add_post = document["paths"]["/api/v1/posts/add-post"]["post"]["responses"]
    assert add_post["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ValidationErrorResponse"
    )


def test_delete_answers_204_without_a_body(document: dict[str, Any]) -> None:
    deleted = document["paths"]["/api/v1/posts/delete-post/{post_id}"]["delete"]["responses"]["204"]
    assert "content" not in deleted


def test_post_routes_take_bearer_or_oauth2_password_whose_token_url_is_the_login_route(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    token_url = schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"]
    assert token_url == TOKEN_URL == "/api/v1/users/login"
    login = document["paths"][token_url]["post"]
    form = login["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]["$ref"]
    assert set(document["components"]["schemas"][form.rsplit("/", 1)[1]]["required"]) == {
        "username",
        "password",
    }
    get_posts = document["paths"]["/api/v1/posts/get-posts"]["get"]
    assert get_posts["security"] == [{"OAuth2PasswordBearer": []}, {"BearerAuth": []}]


def test_compat_post_routes_take_a_required_token_query_parameter(document: dict[str, Any]) -> None:
    for path, method in [
        ("/posts/AddPost", "post"),
        ("/posts/GetPosts", "get"),
        ("/posts/DeletePost", "post"),
    ]:
        parameters = document["paths"][path][method]["parameters"]
        assert parameters[0] == {
            "name": "token",
            "in": "query",
            "required": True,
            "description": "The access token from `/auth/login`.",
            "schema": {"type": "string"},
        }
        assert [parameter["in"] for parameter in parameters[1:]] in ([], ["header"])
        assert "security" not in document["paths"][path][method]


def test_get_posts_documents_conditional_gets_and_pages(document: dict[str, Any]) -> None:
    canonical = document["paths"]["/api/v1/posts/get-posts"]["get"]
    compat = document["paths"]["/posts/GetPosts"]["get"]
    for operation in (canonical, compat):
        assert "If-None-Match" in {parameter["name"] for parameter in operation["parameters"]}
        assert {"ETag", "Cache-Control", "X-Cache"} <= set(operation["responses"]["200"]["headers"])
        assert "content" not in operation["responses"]["304"]
        assert "ETag" in operation["responses"]["304"]["headers"]
    parameters = {parameter["name"]: parameter for parameter in canonical["parameters"]}
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert not parameters["limit"]["required"]
    assert not parameters["after"]["required"]
    assert "Link" in canonical["responses"]["200"]["headers"]
    assert "422" in canonical["responses"]


async def test_the_docs_page_loads_swagger_ui_from_hexpost_itself(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    for source in sources:
        assert source.startswith("/"), source
        asset = await http.get(source)
        assert asset.status_code == 200, source
    for name in ASSETS:
        assert (await http.get(f"{ASSETS_URL}/{name}")).status_code == 200
    assert (await http.get(f"{ASSETS_URL}/swagger-editor-bundle.js")).status_code == 404


def test_metrics_are_documented_as_prometheus_text(document: dict[str, Any]) -> None:
    scrape = document["paths"]["/metrics"]["get"]
    assert scrape["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
    assert "security" not in scrape


async def test_metrics_served_elsewhere_or_off_are_not_in_the_document(
    make_container: Callable[..., Container],
) -> None:
    for setting in ("off", 9464):
        async with in_process_client(make_container(metrics=setting)) as http:
            assert "/metrics" not in (await http.get("/openapi.json")).json()["paths"]
