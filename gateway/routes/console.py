"""GET /ui (the web console) and GET /ui/{name} (its scripts and styles). No auth to load
them: the page signs in with a key and calls the gateway's own /v1 API with it.

Every file is answered with its content type, a strong ETag and ``Cache-Control: no-cache``
(a browser keeps it and revalidates: a 304 until the gateway is upgraded, so an old script
never runs against a new page), ``nosniff``, and a Content-Security-Policy that lets the page
load nothing from anywhere but the gateway itself."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.http.routing import Route
from gateway.ui import Asset, assets
from wire.errors import NotFound

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' blob: data:; media-src 'self' blob:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'")


def _serve(request: Request, asset: Asset) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache",
               "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    if asset.media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = _CSP
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


async def index(request: Request) -> Response:
    return _serve(request, assets()["index.html"])


async def static_file(request: Request) -> Response:
    name: str = request.path_params["name"]
    asset = assets().get(name)
    if asset is None:
        raise NotFound(f"Unknown request URL: GET {request.url.path}.")
    return _serve(request, asset)


routes = [
    Route("/ui", index, methods=["GET", "HEAD"]),
    Route("/ui/", index, methods=["GET", "HEAD"]),
    Route("/ui/{name}", static_file, methods=["GET", "HEAD"]),
]
