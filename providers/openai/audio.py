"""``/v1/audio/transcriptions`` and ``/v1/audio/translations`` passed to a server that speaks
OpenAI's audio API (OpenAI, speaches, vLLM, faster-whisper servers, another gateway).

The client's multipart goes upstream unchanged (re-encoded only when the upstream model id
differs from the name the client sent); the answer comes back byte for byte, a stream as the
upstream's bytes arrive.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

from providers.http import HTTPClient, Timeout
from wire.audio import AudioAnswer, AudioStream, TranscriptionRequest, multipart
from wire.errors import GatewayError

_PATHS = {"transcribe": "/audio/transcriptions", "translate": "/audio/translations"}


class AudioUpstream:
    """One upstream's audio endpoints."""

    def __init__(self, http: HTTPClient, base_url: str, headers: Mapping[str, str],
                 timeout: Timeout, stream_timeout: Timeout) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._headers = {k: v for k, v in headers.items()
                         if k.lower() not in ("content-type", "accept")}
        self._timeout = timeout
        self._stream_timeout = stream_timeout

    async def transcribe(self, request: TranscriptionRequest, model: str
                         ) -> AudioAnswer | AudioStream:
        body, content_type = multipart(request, model)
        url = self._base_url + _PATHS[request.task]
        headers = {**self._headers, "content-type": content_type}
        if not request.stream:
            async with self._http.post(url, content=body, headers=headers,
                                       timeout=self._timeout) as response:
                data = await response.read()
                if response.status >= 400:
                    raise _error(response.status, data, response.headers)
                return AudioAnswer(data, response.headers.get("content-type",
                                                              "application/json"))
        relay = self._relay(url, body, {**headers, "accept": "text/event-stream"})
        try:
            first = await anext(relay)
        except BaseException:
            await relay.aclose()
            raise
        if isinstance(first, AudioAnswer):  # the upstream answered whole, not as a stream
            await relay.aclose()
            return first
        return AudioStream(_bytes_after(first, relay))

    async def _relay(self, url: str, body: bytes, headers: Mapping[str, str]
                     ) -> AsyncGenerator[AudioAnswer | bytes, None]:
        """The upstream's stream as it comes (its first item: b"" once the answer has begun),
        or one whole ``AudioAnswer`` when it did not answer with server-sent events."""
        async with self._http.post(url, content=body, headers=headers,
                                   timeout=self._stream_timeout) as response:
            if response.status >= 400:
                raise _error(response.status, await response.read(), response.headers)
            media_type = response.headers.get("content-type", "")
            if not media_type.startswith("text/event-stream"):
                yield AudioAnswer(await response.read(), media_type or "application/json")
                return
            yield b""
            async for data in response.iter_bytes():
                yield data


async def _bytes_after(first: bytes, rest: AsyncGenerator[AudioAnswer | bytes, None]
                       ) -> AsyncGenerator[bytes, None]:
    try:
        if first:
            yield first
        async for item in rest:
            if isinstance(item, bytes) and item:
                yield item
    finally:
        await rest.aclose()


def _error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    from providers.openai.provider import error_from_body  # (provider.py imports this module)

    return error_from_body(status, body, headers)
