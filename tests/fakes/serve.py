"""Run an ASGI app (a fake upstream, or the gateway itself) on a loopback port, in a thread."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """uvicorn in a background thread with its own event loop; ``url`` once started."""

    def __init__(self, app: Any, **config: Any) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        options = {"log_level": "warning", "lifespan": "on", "access_log": False, **config}
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self._thread = threading.Thread(target=self.server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.005)
        return self

    def stop(self, timeout_s: float = 10) -> None:
        """Ask the server to end; one still running after ``timeout_s`` (a request or a
        task of the app that does not end) is said in a warning and made to exit."""
        self.server.should_exit = True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            warnings.warn(f"test server {self.url} did not stop in {timeout_s} s "
                          "(a request or task still running): forced to exit", stacklevel=2)
            self.server.force_exit = True
            self._thread.join(2)
        self._sock.close()


class RedisServer:
    """A throwaway redis-server on a free port, no persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: apt-get install -y redis-server")
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def client(self) -> Any:
        """A plain (sync) redis-py client of this server."""
        import redis

        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        with self.client() as client:
            client.flushdb()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class GatewayProcess:
    """``gateway serve`` as its own process (a replica), on a free port."""

    def __init__(self, config_path: str, env: dict[str, str], *workers: str,
                 **popen: Any) -> None:
        import os
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", config_path,
             "--port", str(self.port), "--log-level", "warning", *workers],
            env={**os.environ, **env}, **popen)

    def wait_ready(self, timeout_s: float = 30) -> GatewayProcess:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("gateway serve did not come up")

    def stop(self) -> None:
        stop_process(self.process)


@contextlib.contextmanager
def replica_pair(folder: Path, models: dict[str, Any], redis: RedisServer, master_key: str
                 ) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two ``gateway serve`` processes on one redis-server (flushed first), both with the
    models.yaml ``models`` (written in ``folder``) and ``master_key``; stopped at the end."""
    redis.flush()
    config = folder / "models.yaml"
    config.write_text(json.dumps(models))  # JSON is YAML
    env = {"GATEWAY_MASTER_KEY": master_key, "REDIS_URL": redis.url}
    pair = (GatewayProcess(str(config), env), GatewayProcess(str(config), env))
    try:
        for replica in pair:
            replica.wait_ready()
        yield pair
    finally:
        for replica in pair:
            replica.stop()


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Ask a server process to end (SIGTERM), and kill it if it has not in 20 seconds."""
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
