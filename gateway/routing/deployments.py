"""The deployments of each model name and the choice of one for each attempt.

A name repeated in models.yaml is several deployments of one model; the choice spreads calls
across them (least busy first, round-robin among equals), skips a deployment whose circuit
breaker is open or that is at its ``max_parallel``, and passes over one at its rate limit.
Names containing ``*`` are wildcards (``openai/*``). The attempts themselves, retries and
fallbacks are the router's (router.py), built on this.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Set
from dataclasses import dataclass, field

from gateway.access.quotas import Admission, DeploymentLimits, Quotas
from gateway.metrics import Metrics
from gateway.routing.reliability import Attempts, CircuitBreaker, Clock
from providers import PROVIDERS
from providers.base import ChatProvider, DeploymentConfig, ManagedProvider, Provider
from providers.http import HTTPClient
from wire.errors import ModelNotFound, RateLimited


@dataclass(eq=False, slots=True)
class Deployment:
    config: DeploymentConfig
    provider: Provider
    breaker: CircuitBreaker
    where: str = ""  # its entry in models.yaml ("models[3]"), for the logs
    limits: DeploymentLimits | None = None
    in_flight: int = 0
    chat: ChatProvider | None = field(init=False)  # the provider, when it answers chat

    def __post_init__(self) -> None:
        self.chat = self.provider if isinstance(self.provider, ChatProvider) else None

    def upstream_model(self, requested: str) -> str:
        return self.config.upstream_model(requested)

    @property
    def full(self) -> bool:
        """At its ``max_parallel`` requests in flight (counted on this replica)."""
        most = self.config.max_parallel
        return most is not None and self.in_flight >= most


@dataclass(frozen=True, slots=True)
class Route:
    """The deployments that may answer for ``model``, the name the client sent, and the
    names to fall back to when they all fail."""

    model: str
    deployments: tuple[Deployment, ...]
    fallbacks: tuple[str, ...] = ()


def _fallbacks_of(deployments: Iterable[Deployment]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for d in deployments for name in d.config.fallbacks))


class Deployments:
    """Model name → deployments, and the choice of one deployment for an attempt."""

    def __init__(self, configs: Iterable[DeploymentConfig], http: HTTPClient,
                 metrics: Metrics, quotas: Quotas | None = None, *,
                 clock: Clock = time.monotonic) -> None:
        """``quotas``: the deployments' rate limits (none without); ``clock``: what the
        circuit breakers read (tests pass their own)."""
        self._metrics = metrics
        self._quotas = quotas
        by_name: dict[str, list[Deployment]] = {}
        self._deployments: list[Deployment] = []
        for i, config in enumerate(configs):
            where = f"models[{i}]"
            deployment = Deployment(config, PROVIDERS[config.provider](config, http),
                                    CircuitBreaker.for_config(config, clock), where,
                                    DeploymentLimits.of(config, where) if quotas else None)
            self._deployments.append(deployment)
            by_name.setdefault(config.name, []).append(deployment)
        self._exact: dict[str, Route] = {}
        self._wildcards: list[tuple[str, str, tuple[Deployment, ...], tuple[str, ...]]] = []
        for name, deployments in by_name.items():
            fallbacks = _fallbacks_of(deployments)
            if deployments[0].config.is_wildcard:
                prefix, _, suffix = name.partition("*")
                self._wildcards.append((prefix, suffix, tuple(deployments), fallbacks))
            else:
                self._exact[name] = Route(name, tuple(deployments), fallbacks)
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
        for prefix, suffix, deployments, fallbacks in self._wildcards:
            if (len(model) > len(prefix) + len(suffix) and model.startswith(prefix)
                    and model.endswith(suffix)):
                return Route(model, deployments, fallbacks)
        raise ModelNotFound(model)

    def _candidates(self, route: Route, exclude: Set[Deployment]) -> list[Deployment]:
        """The deployments an attempt may go to, in order of preference: least busy first,
        round-robin among equals; none that is excluded or cooling down."""
        deployments = route.deployments
        if len(deployments) == 1:
            only = deployments[0]
            usable = only not in exclude and only.breaker.available() and not only.full
            return [only] if usable else []
        start, count = next(self._turn), len(deployments)
        turned = [deployments[(start + i) % count] for i in range(count)]
        return sorted((d for d in turned
                       if d not in exclude and d.breaker.available() and not d.full),
                      key=lambda d: d.in_flight)  # (a stable sort keeps the turn's order)

    def _all_full(self, route: Route, exclude: Set[Deployment]) -> None:
        """429 when the deployments left are not cooling down but at their max_parallel."""
        left = [d for d in route.deployments if d not in exclude and d.breaker.available()]
        if left and all(d.full for d in left):
            self._metrics.rate_limited.labels("deployment").inc()
            raise RateLimited(f"Every deployment of the model '{route.model}' has its "
                              "max_parallel requests in flight. Try again in 1s.",
                              retry_after=1)

    async def _choose(self, route: Route, exclude: Set[Deployment],
                      admission: Admission | None) -> tuple[Deployment, bool] | None:
        """The deployment for one attempt and whether the call is its breaker's probe; None
        when every deployment not in ``exclude`` is cooling down. A deployment at its rate
        limit is passed over for the next; when all are, 429. Nothing is awaited between
        the breaker check and ``admit``: after waiting for the limits, the check is redone."""
        while candidates := self._candidates(route, exclude):
            best = candidates[0]
            if admission is not None and self._quotas is not None and any(
                    d.limits is not None for d in candidates):
                best = candidates[await self._quotas.pick([d.limits for d in candidates],
                                                          admission, route.model)]
                if not best.breaker.available() or best.full:  # taken meanwhile
                    exclude = {*exclude, best}
                    continue
            return best, best.breaker.admit()
        self._all_full(route, exclude)
        return None

    async def _next(self, route: Route, attempts: Attempts[Deployment],
                    admission: Admission | None) -> tuple[Deployment, bool] | None:
        """The next attempt's deployment: one not tried yet if there is one, else one tried
        before, once its backoff has passed; None when no deployment is left to try."""
        while True:
            excluded, wait_s = attempts.held_back()
            choice = None
            if attempts.tried:
                choice = await self._choose(route, excluded | attempts.failed_keys, admission)
            if choice is None:
                choice = await self._choose(route, excluded, admission)
            if choice is not None or wait_s is None:
                return choice
            await asyncio.sleep(wait_s)
