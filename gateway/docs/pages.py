"""GET /openapi.json, GET /docs and its assets: the document (built once per app, in a
thread, on its first request) and Swagger UI from the ``openapi-ui-bundles`` package's files.
Nothing is fetched from elsewhere: the page works offline, and its Content-Security-Policy
forbids any other origin. No auth (contract section 4)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.docs.document import build
from gateway.http.routing import Route
from wire.errors import NotFound

PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>AI gateway API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/init.js"></script>
</body>
</html>
"""

INIT = b"""window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""

# Swagger UI sets styles and draws icons as data: URIs; everything else is this origin's.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'self'")
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
          "favicon-32x32.png": "image/png", "favicon-16x16.png": "image/png"}


def _bundle_dir() -> Path:
    from openapi_ui_bundles import swagger_ui  # (Swagger UI 5: renders OpenAPI 3.1)

    return Path(swagger_ui.static_path)


def routes() -> list[BaseRoute]:
    """The three routes, with this app's document and assets kept once read."""
    cache: dict[str, bytes] = {}

    async def cached(name: str, make: Callable[[], bytes]) -> bytes:
        """Made once, in a thread (building the document takes tens of ms)."""
        body = cache.get(name)
        if body is None:
            body = cache[name] = await asyncio.to_thread(make)
        return body

    async def openapi(request: Request) -> Response:
        routes = list(request.app.routes)
        body = await cached("openapi.json", lambda: orjson.dumps(build(routes)))
        return Response(body, media_type="application/json")

    async def docs(request: Request) -> Response:
        return Response(PAGE, media_type="text/html", headers={"content-security-policy": CSP})

    async def asset(request: Request) -> Response:
        name: str = request.path_params["file"]
        if name == "init.js":
            return Response(INIT, media_type="text/javascript")
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"No documentation asset '{name}'.", param="file")
        body = await cached(name, lambda: (_bundle_dir() / name).read_bytes())
        return Response(body, media_type=media_type,
                        headers={"cache-control": "public, max-age=86400"})

    return [Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            Route("/docs/{file}", asset, methods=["GET"])]
