"""The ceilings served over HTTP: a bare Starlette route answering a constant 300-byte JSON body, and
a bare route making the Redis call that hexpost's cache hit makes (one MGET of the user's version and
list keys), on the same server stack as hexpost: uvicorn with uvloop and httptools."""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.cache.redis import create_client
from entrypoints.bootstrap import REDIS_TIMEOUT_SECONDS

JSON_TYPE = "application/json"
CONSTANT_BODY = b'{"detail": "' + b"x" * 286 + b'"}'


def ceiling_app(redis_url: str | None, keys: list[str]) -> Starlette:
    async def constant(_request: Request) -> Response:
        return Response(CONSTANT_BODY, media_type=JSON_TYPE)

    routes = [Route("/", constant)]
    if redis_url is not None:
        client = create_client(redis_url, timeout_seconds=REDIS_TIMEOUT_SECONDS)

        async def cached(_request: Request) -> Response:
            _version, entry = await client.mget(*keys)
            payload = entry.partition(b":")[2] if isinstance(entry, bytes) else b"[]"
            return Response(payload, media_type=JSON_TYPE)

        routes.append(Route("/redis", cached))
    return Starlette(routes=routes)


def main() -> None:
    parser = argparse.ArgumentParser(description="bench ceiling server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url")
    parser.add_argument("--key", action="append", default=[])
    args = parser.parse_args()
    uvicorn.run(
        ceiling_app(args.redis_url, args.key),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
