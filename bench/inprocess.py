"""The gateway's own CPU per request, without sockets: its ASGI app driven in-process.

``bench/overhead.py`` measures the gateway as users meet it (uvicorn, sockets, wrk), but on a
small shared VM its figures move by 20-40% from one run to the next. This harness drives the
ASGI app directly, with the upstream answered from memory, so what it times is the gateway's
own code and Starlette's: no sockets, no server, no scheduling of other processes. It runs
the same requests through an in-process floor too (``bench/floor_proxy.py``'s relay: read the
body, post it, answer the bytes; no auth, validation, metrics or errors) and prints the CPU
each spends per request (process time over a batch, minimum and median of the batches) and
the ratio.

    python bench/inprocess.py [--requests 300] [--batches 12] [--concurrency 32]
                              [--only plain|stream] [--profile]

``--profile`` runs the gateway's batches under cProfile and prints the functions by their own
time (``py-spy record --native`` on this process is the other way). Both apps use the same
canned answers as ``bench/fake_upstream.py``: a ``chat.completion`` JSON, or a stream of its
five chunks and ``[DONE]``, each event one upstream read.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import fake_upstream

KEY = "sk-bench"
PLAIN = b'{"model":"bench","messages":[{"role":"user","content":"Say hi"}]}'
STREAM = b'{"model":"bench","messages":[{"role":"user","content":"Say hi"}],"stream":true}'
COMPLETION = fake_upstream.completion_body()
EVENTS = [b"data: " + p + b"\n\n" for p in fake_upstream.stream_payloads(False)]
ASGI = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                 Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


class _Answer:
    """The upstream's answer from memory: the JSON whole, or the stream's events one read
    each (a relay sees what a socket would give it, read by read)."""

    def __init__(self, stream: bool) -> None:
        self.status = 200
        self.stream = stream
        self.headers: Mapping[str, str] = {
            "content-type": "text/event-stream" if stream else "application/json"}

    async def read(self) -> bytes:
        return COMPLETION

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        for event in EVENTS:
            yield event


class _Exchange(AbstractAsyncContextManager[_Answer]):
    def __init__(self, stream: bool) -> None:
        self._answer = _Answer(stream)

    async def __aenter__(self) -> _Answer:
        return self._answer

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        return None


class MemoryUpstream:
    """The gateway's ``HTTPClient`` (providers/http.py), answered from memory."""

    def post(self, url: str, *, content: bytes, headers: Mapping[str, str],
             timeout: object) -> _Exchange:
        return _Exchange(b'"stream":true' in content)

    async def aclose(self) -> None:
        return None


def floor_app(upstream: MemoryUpstream) -> Any:
    """``bench/floor_proxy.py``'s relay over the in-memory upstream."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def chat(request: Request) -> Response:
        body = await request.body()
        exchange = upstream.post("http://upstream/v1/chat/completions", content=body,
                                 headers={"content-type": "application/json"}, timeout=None)
        answer = await exchange.__aenter__()
        if not answer.stream:
            return Response(await answer.read(), media_type="application/json")
        return StreamingResponse(answer.iter_bytes(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def gateway_app(upstream: MemoryUpstream) -> Any:
    from gateway import app as app_module
    from gateway.config import validate

    app_module.create_http_client = lambda name="aiohttp": upstream  # type: ignore[assignment]
    config = validate({"models": [{"name": "bench", "provider": "openai-compatible",
                                   "model": "bench", "api_base": "http://upstream/v1",
                                   "api_key": "sk-x"}]}, "bench")
    return app_module.create_app(config, app_module.Settings(master_key=KEY))


async def started(app: ASGI) -> tuple[dict[str, Any], Callable[[], Awaitable[None]]]:
    """Run the app's lifespan start-up; returns its state and the shutdown."""
    state: dict[str, Any] = {}
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    message = await outbox.get()
    if message["type"] != "lifespan.startup.complete":
        raise SystemExit(f"start-up failed: {message}")

    async def shutdown() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return state, shutdown


async def one_request(app: ASGI, state: dict[str, Any], body: bytes) -> int:
    """One POST as a server would make it; the status."""
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
             "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "query_string": b"", "root_path": "", "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 50000), "state": state.copy(),
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                         (b"authorization", b"Bearer " + KEY.encode()),
                         (b"content-length", str(len(body)).encode())]}
    done = asyncio.Event()
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body", False):
            done.set()

    await app(scope, receive, send)
    done.set()
    return status


async def batch(app: ASGI, state: dict[str, Any], body: bytes, requests: int,
                concurrency: int) -> float:
    """µs of CPU per request over ``requests`` requests, ``concurrency`` at a time."""
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status = await one_request(app, state, body)
            if status != 200:
                raise SystemExit(f"status {status}")

    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - start) / requests * 1e6


async def measure(app: ASGI, body: bytes, args: argparse.Namespace,
                  profile: cProfile.Profile | None = None) -> list[float]:
    state, shutdown = await started(app)
    try:
        await batch(app, state, body, args.requests, args.concurrency)  # warm-up
        figures = []
        for _ in range(args.batches):
            if profile is not None:
                profile.enable()
            figures.append(await batch(app, state, body, args.requests, args.concurrency))
            if profile is not None:
                profile.disable()
        return figures
    finally:
        await shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per batch")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", choices=["plain", "stream"])
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the gateway's batches (slower; own time per function)")
    args = parser.parse_args()
    import logging
    logging.disable(logging.WARNING)  # (the gateway logs nothing per request at INFO)
    upstream = MemoryUpstream()
    print(f"µs of CPU per request, {args.batches} batches of {args.requests} "
          f"(c={args.concurrency}): min / median")
    for name, body in (("plain", PLAIN), ("stream", STREAM)):
        if args.only and args.only != name:
            continue
        profile = cProfile.Profile() if args.profile else None
        gateway = asyncio.run(measure(gateway_app(upstream), body, args, profile))
        gc.collect()
        floor = asyncio.run(measure(floor_app(upstream), body, args))
        g, f = statistics.median(gateway), statistics.median(floor)
        print(f"{name:7} gateway {min(gateway):6.1f} / {g:6.1f}   floor {min(floor):6.1f} / "
              f"{f:6.1f}   gateway / floor {g / f:.2f}x (medians), "
              f"{min(gateway) / min(floor):.2f}x (minimums)")
        if profile is not None:
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
