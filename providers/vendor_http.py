"""The HTTP plumbing of providers that translate: post JSON, read a JSON answer, or read a
stream of server-sent events or of JSON lines. Vendor error answers become gateway errors
through the provider's own ``error_from`` (classified by HTTP status)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, aclosing
from typing import Any

import orjson

from providers.base import RemoteDeploymentConfig
from providers.http import HTTPClient
from wire.errors import GatewayError, UpstreamError
from wire.sse import SSEDecoder, SSEvent

ErrorFrom = Callable[[int, bytes, Mapping[str, str]], GatewayError]


def read_error_body(body: bytes) -> Any:
    """A vendor's error answer parsed, or None when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def plain_message(status: int, body: bytes) -> str:
    return body[:200].decode("utf-8", "replace") if body else f"HTTP {status}"


class VendorHTTP:
    """One deployment's connection settings: headers, timeouts and its error reader."""

    __slots__ = ("_error_from", "_headers", "_http", "_stream_timeout", "_timeout")

    def __init__(self, http: HTTPClient, config: RemoteDeploymentConfig,
                 headers: Mapping[str, str], error_from: ErrorFrom) -> None:
        self._http = http
        self._headers = {"content-type": "application/json", "accept": "application/json",
                         **headers, **config.headers}
        self._error_from = error_from
        self._timeout = config.timeouts(stream=False)
        self._stream_timeout = config.timeouts(stream=True)

    async def post_json(self, url: str, content: bytes) -> Any:
        """The vendor's JSON answer, parsed; an error status raises."""
        async with self._http.post(url, content=content, headers=self._headers,
                                   timeout=self._timeout) as response:
            body = await response.read()
            if response.status >= 400:
                raise self._error_from(response.status, body, response.headers)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("The upstream answered with something that is not JSON.") \
                from exc

    async def stream_bytes(self, url: str, content: bytes, *, sse: bool
                           ) -> AsyncGenerator[bytes, None]:
        """The raw body of a streamed answer, as it arrives."""
        headers = {**self._headers, "accept": "text/event-stream"} if sse else self._headers
        async with self._http.post(url, content=content, headers=headers,
                                   timeout=self._stream_timeout) as response:
            if response.status >= 400:
                raise self._error_from(response.status, await response.read(), response.headers)
            if sse and not response.headers.get("content-type", "").startswith(
                    "text/event-stream"):
                raise UpstreamError("The upstream did not answer the stream with server-sent "
                                    "events.")
            async for data in response.iter_bytes():
                yield data

    def stream_events(self, url: str, content: bytes) -> AbstractAsyncContextManager[
            AsyncIterator[SSEvent]]:
        """Server-sent events, one by one; the ``async with`` closes the upstream call when
        its reader stops early (a client that left)."""
        return aclosing(self._events(url, content))

    async def _events(self, url: str, content: bytes) -> AsyncGenerator[SSEvent, None]:
        decoder = SSEDecoder()
        async with aclosing(self.stream_bytes(url, content, sse=True)) as chunks:
            async for data in chunks:
                for event in decoder.feed(data):
                    yield event

    def stream_lines(self, url: str, content: bytes) -> AbstractAsyncContextManager[
            AsyncIterator[bytes]]:
        """Newline-delimited JSON, one non-empty line at a time; closed as ``stream_events``."""
        return aclosing(self._lines(url, content))

    async def _lines(self, url: str, content: bytes) -> AsyncGenerator[bytes, None]:
        buffer = b""
        async with aclosing(self.stream_bytes(url, content, sse=False)) as chunks:
            async for data in chunks:
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield line
        if buffer.strip():
            yield buffer
