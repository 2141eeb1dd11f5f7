"""Route templates: the label a request is counted and traced under, never its raw path."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Mount, Route

UNMATCHED = "<unmatched>"


def route_templates(routes: Iterable[BaseRoute], prefix: str = "") -> dict[int, str]:
    """The full path template of every endpoint route (mounts' prefixes included), by the route
    object's id: Starlette leaves the route it matched in `scope["route"]`. A mount of routes is
    left out: a path under it that none of its routes matches is unmatched."""
    templates: dict[int, str] = {}
    for route in routes:
        if isinstance(route, Mount) and route.routes:
            templates.update(route_templates(route.routes, prefix + route.path))
        elif isinstance(route, Mount):
            templates[id(route)] = f"{prefix}{route.path}/{{path}}"
        elif isinstance(route, Route):
            templates[id(route)] = prefix + route.path
    return templates
