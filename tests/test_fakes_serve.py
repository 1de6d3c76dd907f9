"""The test servers' own stop: a server kept from ending by its app is said, and ended."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import httpx
import pytest

from tests.fakes.serve import ServerThread


def hanging_app(entered: threading.Event) -> Any:
    """An ASGI app whose every request waits for ever (a fake that hangs)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        entered.set()
        await asyncio.Event().wait()

    return app


def request(url: str) -> None:
    """A request of the hanging app; whatever it ends with (the server is forced down)."""
    with contextlib.suppress(httpx.TransportError):
        httpx.get(url, timeout=30)


def test_stop_warns_and_forces_a_server_that_does_not_end() -> None:
    entered = threading.Event()
    server = ServerThread(hanging_app(entered)).start()
    client = threading.Thread(target=request, args=(server.url,), daemon=True)
    client.start()
    assert entered.wait(5)
    started = time.monotonic()
    with pytest.warns(UserWarning, match=f"{server.url} did not stop in 0.3 s"):
        server.stop(timeout_s=0.3)
    assert not server._thread.is_alive()  # forced to exit, not left running
    assert time.monotonic() - started < 3
    client.join(5)
    assert not client.is_alive()  # its connection ended with the server


def test_stop_of_an_idle_server_is_quick_and_quiet(recwarn: pytest.WarningsRecorder) -> None:
    server = ServerThread(hanging_app(threading.Event())).start()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    assert not server._thread.is_alive()
    assert not [w for w in recwarn if "did not stop" in str(w.message)]
