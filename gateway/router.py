"""Model name → deployments, and the choice of one for each call.

A name repeated in models.yaml is several deployments of one model; the router spreads calls
across them (least busy first, round-robin among equals). Names containing ``*`` are wildcards
(``openai/*``). The router is the only place that knows a model may have several deployments;
it also counts each call's tokens and its upstream failures.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncGenerator, Iterable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass

from gateway.errors import GatewayError, InvalidRequest, ModelNotFound
from gateway.metrics import Metrics
from providers import PROVIDERS
from providers.base import (
    ChatRequest,
    ChatResult,
    DeploymentConfig,
    EmbeddingProvider,
    EmbeddingRequest,
    ManagedProvider,
    Provider,
    StreamChunk,
)
from providers.http import HTTPClient

log = logging.getLogger("gateway")


@dataclass(eq=False, slots=True)
class Deployment:
    config: DeploymentConfig
    provider: Provider
    in_flight: int = 0

    def upstream_model(self, requested: str) -> str:
        return self.config.upstream_model(requested)


@dataclass(frozen=True, slots=True)
class Route:
    """The deployments that may answer for ``model``, the name the client sent."""

    model: str
    deployments: tuple[Deployment, ...]


class Router:
    def __init__(self, configs: Iterable[DeploymentConfig], http: HTTPClient,
                 metrics: Metrics) -> None:
        self._metrics = metrics
        by_name: dict[str, list[Deployment]] = {}
        self._deployments: list[Deployment] = []
        for config in configs:
            deployment = Deployment(config, PROVIDERS[config.provider](config, http))
            self._deployments.append(deployment)
            by_name.setdefault(config.name, []).append(deployment)
        self._exact: dict[str, Route] = {}
        self._wildcards: list[tuple[str, str, tuple[Deployment, ...]]] = []
        for name, deployments in by_name.items():
            if deployments[0].config.is_wildcard:
                prefix, _, suffix = name.partition("*")
                self._wildcards.append((prefix, suffix, tuple(deployments)))
            else:
                self._exact[name] = Route(name, tuple(deployments))
        self._turn = itertools.count()

    async def start(self) -> None:
        """Start every provider that has something to set up (see ManagedProvider)."""
        for deployment in self._deployments:
            if isinstance(deployment.provider, ManagedProvider):
                await deployment.provider.start()

    async def aclose(self) -> None:
        for deployment in self._deployments:
            if isinstance(deployment.provider, ManagedProvider):
                await deployment.provider.aclose()

    def names(self) -> list[tuple[str, str]]:
        """(name, provider) of every model a client can list; wildcards are not listed."""
        return [(name, route.deployments[0].config.provider)
                for name, route in self._exact.items()]

    def resolve(self, model: str) -> Route:
        route = self._exact.get(model)
        if route is not None:
            return route
        for prefix, suffix, deployments in self._wildcards:
            if (len(model) > len(prefix) + len(suffix) and model.startswith(prefix)
                    and model.endswith(suffix)):
                return Route(model, deployments)
        raise ModelNotFound(model)

    def _pick(self, route: Route) -> Deployment:
        deployments = route.deployments
        if len(deployments) == 1:
            return deployments[0]
        start = next(self._turn)
        count = len(deployments)
        best = deployments[start % count]
        for i in range(1, count):
            candidate = deployments[(start + i) % count]
            if candidate.in_flight < best.in_flight:
                best = candidate
        return best

    @contextmanager
    def _calling(self, route: Route, deployment: Deployment) -> Iterator[None]:
        """Count a call in flight on ``deployment`` and any upstream failure it raises."""
        deployment.in_flight += 1
        try:
            yield
        except GatewayError as error:
            provider = deployment.config.provider
            self._metrics.upstream_errors.labels(route.model, provider, error.code or "error").inc()
            log.warning("model %s (%s) failed: %d %s: %s", route.model, provider, error.status,
                        error.code, error.message)
            raise
        finally:
            deployment.in_flight -= 1

    async def chat(self, route: Route, request: ChatRequest) -> ChatResult:
        deployment = self._pick(route)
        with self._calling(route, deployment):
            result = await deployment.provider.chat(request, deployment.upstream_model(route.model))
        if result.usage:
            self._metrics.count_tokens(route.model, result.usage.prompt_tokens,
                                       result.usage.completion_tokens)
        return result

    async def stream(self, route: Route, request: ChatRequest, *, keep_usage_only: bool = False
                     ) -> AsyncGenerator[StreamChunk, None]:
        """The chunks of one answer; a usage-only chunk only when the client asked for usage
        or the caller wants to see it anyway (``keep_usage_only``: the cache)."""
        deployment = self._pick(route)
        wants_usage = request.include_usage or keep_usage_only
        upstream = deployment.provider.stream(request, deployment.upstream_model(route.model))
        with self._calling(route, deployment):
            async with aclosing(upstream) as chunks:
                async for chunk in chunks:
                    if chunk.usage is not None:
                        self._metrics.count_tokens(route.model, chunk.usage.prompt_tokens,
                                                   chunk.usage.completion_tokens)
                    if wants_usage or not chunk.usage_only:
                        yield chunk

    async def embed(self, route: Route, request: EmbeddingRequest) -> ChatResult:
        deployment = self._pick(route)
        provider = deployment.provider
        if not isinstance(provider, EmbeddingProvider):
            raise InvalidRequest(f"The model '{route.model}' does not support embeddings.",
                                 param="model")
        with self._calling(route, deployment):
            result = await provider.embed(request, deployment.upstream_model(route.model))
        if result.usage:
            self._metrics.count_tokens(route.model, result.usage.prompt_tokens, 0)
        return result
