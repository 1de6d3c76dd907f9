"""The upstream HTTP client, behind one small interface.

Providers only ever ``post`` bytes and read bytes back, whole or as they arrive. Transport
failures come out as gateway errors: a timeout as ``UpstreamTimeout``, a refused or broken
connection as ``UpstreamUnavailable``, anything else the transport raises as ``UpstreamError``.

Two implementations, chosen by ``server.http_client``: aiohttp (the default) and httpx. On
``bench/overhead.py`` at concurrency 32 the gateway answered 1,650-2,650 non-stream req/s with
aiohttp and 458 with httpx's pooled ``AsyncClient`` (p99 290-450 ms).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol

import aiohttp
import httpx

from wire.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable


@dataclass(slots=True, frozen=True)
class Timeout:
    connect: float
    total: float | None  # the whole exchange; None for streams
    idle: float | None  # the longest wait for the next bytes


class UpstreamResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def iter_bytes(self) -> AsyncIterator[bytes]: ...


class HTTPClient(Protocol):
    def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str], timeout: Timeout
    ) -> AbstractAsyncContextManager[UpstreamResponse]: ...

    async def aclose(self) -> None: ...


HTTPClientName = Literal["aiohttp", "httpx"]


def create_http_client(name: HTTPClientName = "aiohttp") -> HTTPClient:
    """Must be called inside the running event loop (the app's lifespan)."""
    return AiohttpClient() if name == "aiohttp" else HttpxClient()


class _AiohttpResponse:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        return await self._response.read()

    def iter_bytes(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()  # (no generator of our own around it)


@functools.lru_cache(maxsize=256)
def _aiohttp_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    idle = timeout.idle
    if idle is not None and timeout.total is not None and idle >= timeout.total:
        idle = None  # (the total bounds every wait: no read timer to reset on every read)
    return aiohttp.ClientTimeout(total=timeout.total, sock_connect=timeout.connect,
                                 sock_read=idle)


def _as_gateway_error(exc: BaseException, url: str) -> BaseException:
    """aiohttp's failure as the gateway's error; anything else unchanged."""
    if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
        return UpstreamTimeout(f"The upstream did not answer in time ({url}).")
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)):
        return UpstreamUnavailable(f"Cannot reach the upstream at {url}: {exc}")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError(f"The upstream connection failed: {type(exc).__name__}")
    return exc


class _AiohttpExchange(AbstractAsyncContextManager[UpstreamResponse]):
    """One ``post``: the response once its head has come; at the end its connection goes
    back to the pool, or is dropped when the body was not read to its end. (A class rather
    than an ``asynccontextmanager`` around aiohttp's own: two layers less on every call.)"""

    __slots__ = ("_request", "_response", "_url")

    def __init__(self, request: Awaitable[aiohttp.ClientResponse], url: str) -> None:
        self._request = request
        self._url = url
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> UpstreamResponse:
        try:
            self._response = await self._request
        except Exception as exc:
            raise _as_gateway_error(exc, self._url) from exc
        return _AiohttpResponse(self._response)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        response = self._response
        if response is not None:
            if not response.content.at_eof():
                response.close()  # drop a half-read connection rather than reuse it
            await response.__aexit__(exc_type, exc, traceback)
        if exc is not None:
            error = _as_gateway_error(exc, self._url)
            if error is not exc:
                raise error from exc


class AiohttpClient:
    def __init__(self, max_connections: int = 1000) -> None:
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0,
                                         ttl_dns_cache=300, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)

    def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str], timeout: Timeout
    ) -> AbstractAsyncContextManager[UpstreamResponse]:
        return _AiohttpExchange(self._session.post(url, data=content, headers=headers,
                                                   timeout=_aiohttp_timeout(timeout)), url)

    async def aclose(self) -> None:
        await self._session.close()


class _HttpxResponse:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        return await self._response.aread()

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        async for data in self._response.aiter_bytes():
            yield data


class HttpxClient:
    def __init__(self, max_connections: int = 1000) -> None:
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(limits=limits, timeout=None)

    @asynccontextmanager
    async def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str], timeout: Timeout
    ) -> AsyncIterator[UpstreamResponse]:
        httpx_timeout = httpx.Timeout(connect=timeout.connect, read=timeout.idle,
                                      write=timeout.idle, pool=timeout.connect)
        request = self._client.build_request("POST", url, content=content, headers=headers,
                                             timeout=httpx_timeout)
        try:
            async with asyncio.timeout(timeout.total):
                response = await self._client.send(request, stream=True)
                try:
                    yield _HttpxResponse(response)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamTimeout(f"The upstream did not answer in time ({url}).") from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            raise UpstreamUnavailable(f"Cannot reach the upstream at {url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"The upstream connection failed: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
