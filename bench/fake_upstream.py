"""A very cheap fake OpenAI upstream for the overhead benchmark.

A raw asyncio ``Protocol`` on uvloop that parses HTTP/1.1 with httptools (keep-alive,
``Content-Length`` and chunked request bodies) and answers ``POST /v1/chat/completions`` with
canned bytes, built once at start-up:

* a ``chat.completion`` JSON object, or
* when the body contains ``"stream":true``, a chunked ``text/event-stream`` of five
  ``chat.completion.chunk`` events (``"max_tokens":N``: N of them, for long streams), a
  usage-only chunk when the body contains ``"include_usage":true``, then ``data: [DONE]``;
  with ``"hold":true`` the stream sends its first event and then stays open until the client
  closes it (``bench/open_streams.py``).

The request JSON is never parsed: substring checks are enough and keep the server from being
the bottleneck. Prints the port it listens on as its first line of stdout.

    python bench/fake_upstream.py [--host 127.0.0.1] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import re
from typing import Any, cast

import httptools
import uvloop

CHAT_PATH = b"/v1/chat/completions"
MODEL = "bench"
CREATED = 1_700_000_000
COMPLETION_ID = "chatcmpl-bench0000000000000000000000"
WORDS = ["Hi", "!", " How", " can I", " help?"]
USAGE = {"prompt_tokens": 9, "completion_tokens": len(WORDS), "total_tokens": 9 + len(WORDS)}


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def completion_body() -> bytes:
    message = {"role": "assistant", "content": "".join(WORDS), "refusal": None}
    return _json({
        "id": COMPLETION_ID, "object": "chat.completion", "created": CREATED, "model": MODEL,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": USAGE,
    })


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": COMPLETION_ID, "object": "chat.completion.chunk", "created": CREATED,
            "model": MODEL, "choices": choices, **extra}


def words(count: int) -> list[str]:
    """The answer's pieces: the five canned ones, or ``count`` of them for a long stream."""
    return WORDS if count == len(WORDS) else [WORDS[i % len(WORDS)] for i in range(count)]


def stream_payloads(include_usage: bool, count: int = len(WORDS)) -> list[bytes]:
    """The ``data:`` payloads of one stream of ``count`` content chunks, ``[DONE]`` included."""
    pieces = words(count)
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": pieces[0]},
                                    *({"content": w} for w in pieces[1:])]
    chunks = [_chunk([{"index": 0, "delta": d, "logprobs": None,
                       "finish_reason": "stop" if i == len(deltas) - 1 else None}])
              for i, d in enumerate(deltas)]
    if include_usage:
        chunks.append(_chunk([], usage=USAGE))
    return [*(_json(c) for c in chunks), b"[DONE]"]


def _head(status: bytes, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return b"HTTP/1.1 " + status + b"\r\n" + lines.encode() + b"\r\n"


def whole_response(status: bytes, body: bytes) -> bytes:
    headers = {"content-type": "application/json", "content-length": str(len(body))}
    return _head(status, headers) + body


_STREAM_HEADERS = {"content-type": "text/event-stream; charset=utf-8",
                   "cache-control": "no-cache", "transfer-encoding": "chunked"}


def _http_chunk(payload: bytes) -> bytes:
    event = b"data: " + payload + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


@functools.cache
def stream_response(include_usage: bool, count: int = len(WORDS)) -> bytes:
    out = [_head(b"200 OK", _STREAM_HEADERS)]
    out += (_http_chunk(payload) for payload in stream_payloads(include_usage, count))
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def chunk_count(body: bytes) -> int:
    """``"max_tokens":N`` in the body (N <= 100,000): that many chunks; else five."""
    match = re.search(rb'"max_tokens": ?(\d{1,6})[,}]', body)
    count = int(match.group(1)) if match else len(WORDS)
    return count if 1 <= count <= 100_000 else len(WORDS)


COMPLETION = whole_response(b"200 OK", completion_body())
HELD_START = _head(b"200 OK", _STREAM_HEADERS) + _http_chunk(stream_payloads(False)[0])
NOT_FOUND = whole_response(b"404 Not Found", b'{"error":{"message":"not found"}}')
BAD_REQUEST = whole_response(b"400 Bad Request", b'{"error":{"message":"bad request"}}')


def is_set(body: bytes, key: bytes) -> bool:
    return b'"' + key + b'":true' in body or b'"' + key + b'": true' in body


def answer(method: bytes, url: bytes, body: bytes) -> bytes:
    if method != b"POST" or url.split(b"?", 1)[0] != CHAT_PATH:
        return NOT_FOUND
    if not is_set(body, b"stream"):
        return COMPLETION
    if is_set(body, b"hold"):
        return HELD_START
    return stream_response(is_set(body, b"include_usage"), chunk_count(body))


class UpstreamProtocol(asyncio.Protocol):
    """One connection: feed bytes to httptools, answer each complete request in order."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body = bytearray()  # (appended in place: a 30 MB body is not copied per chunk)
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop sets TCP_NODELAY

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._reply(BAD_REQUEST, keep_alive=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._body = b"", bytearray()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        response = answer(self._parser.get_method(), self._url, bytes(self._body))
        # (a held stream never ends: the connection stays open until the client closes it)
        self._reply(response, keep_alive=self._parser.should_keep_alive()
                    or response is HELD_START)

    def _reply(self, response: bytes, *, keep_alive: bool) -> None:
        if self._closing or self._transport is None:
            return
        self._transport.write(response)
        if not keep_alive:
            self._closing = True
            self._transport.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def starlette_app() -> Any:
    """The same canned answers from an ordinary Python server (Starlette on uvicorn), each
    stream event written on its own, as a real model server writes them."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    completion = completion_body()

    async def chat(request: Request) -> Response:
        body = await request.body()
        if not is_set(body, b"stream"):
            return Response(completion, media_type="application/json")
        hold = is_set(body, b"hold")
        payloads = stream_payloads(is_set(body, b"include_usage"), chunk_count(body))

        async def events() -> Any:
            for payload in payloads:
                yield b"data: " + payload + b"\n\n"
                if hold:
                    await asyncio.Event().wait()  # until the client goes away

        return StreamingResponse(events(), media_type="text/event-stream; charset=utf-8")

    return Starlette(routes=[Route(CHAT_PATH.decode(), chat, methods=["POST"])])


def serve_starlette(host: str, port: int) -> None:
    import socket

    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(starlette_app(), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description="A canned OpenAI upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--server", choices=["raw", "starlette"], default="raw",
                        help="raw: httptools on uvloop (~70k req/s here); starlette: an "
                             "ordinary Python server on uvicorn")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        if args.server == "starlette":
            serve_starlette(args.host, args.port)
        else:
            uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
