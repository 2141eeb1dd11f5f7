"""The router tries the cached list's route first (`hot_first`): safe only while no two routes match
one path, which this checks over every route the app serves."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from starlette.routing import BaseRoute, Mount, Route, compile_path

from entrypoints.container import Container
from entrypoints.http.app import create_app


def leaves(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    for route in routes:
        if isinstance(route, Mount) and route.routes:
            yield from leaves(route.routes, prefix + route.path)
        elif isinstance(route, Route | Mount):
            yield prefix + route.path, route


def example(path: str) -> str:
    """A concrete path the route's pattern matches."""
    return re.sub(r"\{[^}]+\}", "1", path)


def test_no_two_routes_match_one_path(make_container: Callable[..., Container]) -> None:
    app = create_app(make_container())
    patterns = []
    for path, route in leaves(app.routes):
        # A mount of files (the docs page's assets) serves everything below its path.
        pattern = path + "/{rest:path}" if isinstance(route, Mount) else path
        patterns.append((pattern, compile_path(pattern)[0]))

    assert len(patterns) > 20
    for pattern, _ in patterns:
        concrete = example(pattern)
        matching = [other for other, regex in patterns if regex.match(concrete)]
        assert matching == [pattern], concrete


def test_the_cached_lists_route_is_tried_first(make_container: Callable[..., Container]) -> None:
    app = create_app(make_container())

    assert next(leaves(app.routes))[0] == "/api/v1/posts/get-posts"
