"""The least a Python proxy can do: Starlette on uvicorn relaying each request with one pooled
aiohttp session, with no auth, validation, metrics or error handling. ``bench/overhead.py
--vs floor`` runs it beside the gateway, so the gateway's own cost can be told apart from what
any proxy built on these libraries costs on this machine.

    python bench/floor_proxy.py UPSTREAM_BASE_URL PORT
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def build(upstream: str) -> Starlette:
    url = f"{upstream}/v1/chat/completions"
    sessions: list[aiohttp.ClientSession] = []

    async def chat(request: Request) -> Response:
        if not sessions:  # (the gateway's connection cap: aiohttp's default of 100 would
            # hold bench/open_streams.py's 1,000 streams back)
            sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)))
        body = await request.body()
        response = await sessions[0].post(url, data=body,
                                          headers={"content-type": "application/json"})
        if b'"stream":true' not in body:
            data = await response.read()
            return Response(data, media_type="application/json")

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for piece in response.content.iter_any():
                    yield piece
            finally:  # (a client that leaves mid-stream must free its upstream connection:
                # without this, each one held a slot of the cap until the process ended)
                response.release()

        return StreamingResponse(relay(), media_type="text/event-stream")

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/health", health)])


if __name__ == "__main__":
    uvicorn.run(build(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning", access_log=False)
