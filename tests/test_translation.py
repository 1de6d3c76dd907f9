"""The pure pieces, table-style: SSE decoding, OpenAI pass-through, error classification."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import partial

import orjson
import pytest

from providers.openai.provider import (
    error_from_body,
    from_upstream,
    from_upstream_chunk,
    to_upstream,
)
from providers.openai.stream import UpstreamEvents
from wire import errors
from wire.errors import GatewayError, UpstreamError, from_upstream_status
from wire.openai import StreamChunk, Usage
from wire.sse import SSEDecoder, SSEvent


@pytest.mark.parametrize(("pieces", "expected"), [
    ([b"data: a\n\n"], [SSEvent(b"a")]),
    ([b"data: a\r\n\r\ndata: b\r\n\r\n"], [SSEvent(b"a"), SSEvent(b"b")]),
    ([b"data: a\r", b"\n\r\n"], [SSEvent(b"a")]),
    ([b"da", b"ta: {\"x\"", b":1}\n", b"\n"], [SSEvent(b'{"x":1}')]),
    ([b": ping\n\ndata:no-space\n\n"], [SSEvent(b"no-space")]),
    ([b"event: message_start\ndata: 1\ndata: 2\n\n"], [SSEvent(b"1\n2", "message_start")]),
    ([b"data: unterminated\n"], []),
])
def test_sse_decoder(pieces: list[bytes], expected: list[SSEvent]) -> None:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    assert events == expected


def test_to_upstream_replaces_model_and_asks_usage_on_streams() -> None:
    raw = {"model": "alias", "messages": [], "stream": True, "stream_options": {"x": 1},
           "extra": True}
    assert orjson.loads(to_upstream(raw, "real", stream=True)) == {
        "model": "real", "messages": [], "stream": True,
        "stream_options": {"x": 1, "include_usage": True}, "extra": True}
    assert "stream_options" not in orjson.loads(to_upstream({"model": "a"}, "b", stream=False))
    assert orjson.loads(to_upstream(raw, "real", stream=True, stream_usage=False))[
        "stream_options"] == {"x": 1}
    assert raw["model"] == "alias"  # the client's body is not changed


CHUNK = b'{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}'
USAGE = b'{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}'


@pytest.mark.parametrize(("data", "wants", "expected_data", "usage", "usage_only"), [
    (CHUNK, True, CHUNK, None, False),
    (CHUNK, False, CHUNK.replace(b',"usage":null', b""), None, False),
    (b'{"choices":[]}', False, b'{"choices":[]}', None, False),
    (USAGE, False, USAGE, Usage(3, 4), True),
    (USAGE.replace(b"[]", b'[{"index":0}]'), True, USAGE.replace(b"[]", b'[{"index":0}]'),
     Usage(3, 4), False),
])
def test_from_upstream_chunk(data: bytes, wants: bool, expected_data: bytes,
                             usage: Usage | None, usage_only: bool) -> None:
    chunk = from_upstream_chunk(data, client_wants_usage=wants)
    assert (chunk.data, chunk.usage, chunk.usage_only) == (expected_data, usage, usage_only)


@pytest.mark.parametrize(("data", "message"), [
    (b'{"error":{"message":"boom"}}', "boom"),
    (b"hello", "not JSON"),
    (b"[1]", "not a JSON object"),
])
def test_from_upstream_chunk_errors(data: bytes, message: str) -> None:
    with pytest.raises(errors.UpstreamError, match=message):
        from_upstream_chunk(data, client_wants_usage=False)


def test_from_upstream_keeps_bytes() -> None:
    body = b'{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}'
    assert from_upstream(body).body is body and from_upstream(body).usage == Usage(1, 2)
    for bad in (b"<html>", b"[]", b'{"no":"choices"}'):
        with pytest.raises(errors.UpstreamError):
            from_upstream(bad)


@pytest.mark.parametrize(("status", "error_class", "code"), [
    (400, errors.InvalidRequest, "invalid_value"),
    (401, errors.UpstreamError, "upstream_error"),
    (403, errors.UpstreamError, "upstream_error"),
    (404, errors.NotFound, "model_not_found"),
    (408, errors.UpstreamTimeout, "upstream_timeout"),
    (413, errors.RequestTooLarge, "request_too_large"),
    (422, errors.InvalidRequest, "invalid_value"),
    (429, errors.RateLimited, "rate_limit_exceeded"),
    (500, errors.UpstreamError, "upstream_error"),
    (503, errors.UpstreamError, "upstream_error"),
])
def test_status_classification(status: int, error_class: type[errors.GatewayError],
                               code: str) -> None:
    error = from_upstream_status(status, "whatever the text says")
    assert type(error) is error_class and error.code == code


def test_error_body_reading() -> None:
    body = b'{"error":{"message":"too long","param":"messages",'\
           b'"code":"context_length_exceeded"}}'
    error = error_from_body(400, body, {})
    assert (error.message, error.param, error.code) == (
        "too long", "messages", "context_length_exceeded")
    assert error_from_body(502, b"upstream proxy says no", {}).message.endswith(
        "upstream proxy says no")
    limited = error_from_body(429, b"{}", {"retry-after": "2.5"})
    assert limited.headers == {"retry-after": "3"}
    assert error_from_body(429, b"{}", {}).headers == {"retry-after": "1"}


def _event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def _relay(reads: list[bytes], wants_usage: bool = False) -> tuple[list[StreamChunk], bool]:
    events = UpstreamEvents(partial(from_upstream_chunk, client_wants_usage=wants_usage),
                            client_wants_usage=wants_usage)
    return [c for data in reads for c in events.feed(data)], events.done


def test_plain_events_pass_as_the_upstream_bytes() -> None:
    read = _event(CHUNK) + _event(CHUNK)
    chunks, done = _relay([read], wants_usage=True)
    assert [c.sse for c in chunks] == [read] and not done
    chunks, _ = _relay([read])  # the "usage":null the gateway caused goes
    assert chunks[0].sse == read.replace(b',"usage":null', b"") and chunks[0].event == chunks[0].sse


@pytest.mark.parametrize("read", [
    _event(CHUNK)[:-1],  # ends mid-event
    _event(CHUNK).replace(b"\n", b"\r\n"),
    b": comment\n\n" + _event(CHUNK),
    b"event: x\n" + _event(CHUNK),
    _event(b'{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}'),
])
def test_anything_but_plain_events_is_decoded_one_by_one(read: bytes) -> None:
    chunks, _ = _relay([read, b"\n" if read.endswith(b"}\n") else b""], wants_usage=True)
    assert chunks and all(not c.sse and c.data.startswith(b"{") for c in chunks)


def test_usage_done_errors_and_bad_chunks_keep_their_meaning() -> None:
    usage = b'{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}'
    chunks, done = _relay([_event(CHUNK) + _event(usage) + b"data: [DONE]\n\n" + _event(CHUNK)])
    assert [c.usage for c in chunks] == [None, Usage(3, 2)] and chunks[1].usage_only and done
    with pytest.raises(GatewayError):
        _relay([_event(b'{"error":{"message":"boom"}}')])
    with pytest.raises(UpstreamError, match="not JSON"):
        _relay([_event(b"<html>oops</html>")])


def _delta(text: str) -> bytes:
    return orjson.dumps({"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": text}, "finish_reason": None}]})


def test_batched_chunks_split_into_single_ones() -> None:
    batch = StreamChunk(b"", sse=b"data: " + _delta("a") + b"\n\ndata: " + _delta("b") + b"\n\n")
    assert [part.data for part in batch.split()] == [_delta("a"), _delta("b")]
    single = StreamChunk(_delta("c"))
    assert single.split() == [single]


async def test_restoring_a_batched_stream_sees_every_chunk() -> None:
    """Guardrails' restore reads each chunk's JSON: a batch of relayed bytes is split first,
    and a placeholder cut across two batched chunks is still restored whole."""
    from gateway.guardrails.restore import restored

    async def upstream() -> AsyncGenerator[StreamChunk, None]:
        yield StreamChunk(b"", sse=b"data: " + _delta("mail <EMA") + b"\n\ndata: "
                          + _delta("IL_1> now") + b"\n\n")

    out = [orjson.loads(chunk.data) async for chunk in restored(upstream(),
                                                                 {"<EMAIL_1>": "a@b.io"})]
    assert "".join(c["choices"][0]["delta"]["content"] for c in out) == "mail a@b.io now"
