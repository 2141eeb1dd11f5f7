"""The ASGI application factory that server processes import (`uvicorn --factory`)."""

from starlette.applications import Starlette

from entrypoints.container import Container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings


def create() -> Starlette:
    return create_app(Container(settings=Settings()))
