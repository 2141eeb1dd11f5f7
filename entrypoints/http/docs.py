"""`/openapi.json` and the docs page `/docs` (Swagger UI).

The Swagger UI assets come from the swagger-ui-py package and are served by hexpost itself: the page
loads nothing from elsewhere, so it works offline and behind a firewall.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from entrypoints.http.openapi import openapi_document

TITLE = "hexpost"
DESCRIPTION = (
    "Posts of authenticated users. The canonical API lives under `/api/v1`; the compatibility API "
    "(`/auth/...`, `/posts/...`) serves clients of the older fastapi-users flavoured service and takes "
    "its token as a `token` query parameter. Authorize with your email as username to try the "
    "canonical post routes."
)
OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
# Only what the page needs; the package also carries Swagger Editor and source maps.
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "oauth2-redirect.html")

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS_URL}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script src="{DOCS_URL}/init.js"></script>
</body>
</html>
"""

INIT_SCRIPT = f"""window.ui = SwaggerUIBundle({{
  url: "{OPENAPI_URL}",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  validatorUrl: null,
  oauth2RedirectUrl: window.location.origin + "{ASSETS_URL}/oauth2-redirect.html",
}});
"""


def swagger_ui_assets() -> Path:
    """Found, not imported: importing swagger-ui-py loads werkzeug, jinja2 and yaml for its own
    framework integrations, 15 MB of a server's memory that only this directory is wanted from."""
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(spec.submodule_search_locations[0]) / "static"


class _Assets(StaticFiles):
    """The listed files of the Swagger UI package, nothing else."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in ASSETS:
            return "", None
        return super().lookup_path(path)


def docs_routes(document: Mapping[str, Any]) -> list[BaseRoute]:
    """The routes serving `document` and the page that renders it; none of them is in it."""
    body = to_json(document)
    page = PAGE.format(title=html.escape(f"{document['info']['title']} - API docs"))

    async def openapi(_request: Request) -> Response:
        return Response(body, media_type="application/json")

    async def docs(_request: Request) -> Response:
        return HTMLResponse(page)

    async def init(_request: Request) -> Response:
        return Response(INIT_SCRIPT, media_type="text/javascript")

    return [
        Route(OPENAPI_URL, openapi, methods=["GET"], include_in_schema=False),
        Route(DOCS_URL, docs, methods=["GET"], include_in_schema=False),
        Route(f"{DOCS_URL}/init.js", init, methods=["GET"], include_in_schema=False),
        Mount(ASSETS_URL, _Assets(directory=swagger_ui_assets()), name="docs-assets"),
    ]


def with_docs(routes: list[BaseRoute]) -> list[BaseRoute]:
    """`routes`, and the document of them with its docs page."""
    document = openapi_document(routes, TITLE, version("hexpost"), DESCRIPTION)
    return [*routes, *docs_routes(document)]
