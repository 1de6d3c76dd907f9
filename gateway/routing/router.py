"""Each call's attempts, retries and fallbacks, and the public calls (chat, stream, embed, invoke).

The router picks a deployment for each attempt (deployments.py: least busy first, breakers,
max_parallel, deployment limits). A call failing with a retryable error
(routing/reliability.py) is retried, on another deployment of the name first, then handed to
the name's ``fallbacks`` (and theirs, depth first, each name at most once); a stream only until
its first chunk. The router is the only place that knows a model may have several deployments;
it also counts each call's tokens and its upstream failures, and refuses (400) a call to a
model without the capability it needs (chat, embeddings, transcription, ...).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import aclosing
from types import TracebackType
from typing import TypeVar

from gateway.access.quotas import Admission, no_tokens
from gateway.access.spend import Meter
from gateway.routing.deployments import Deployment, Deployments, Route
from gateway.routing.reliability import RETRYABLE, Attempts, Failures, is_retryable
from providers.base import ChatProvider, Detector, EmbeddingProvider, OCRProvider, Transcriber
from wire.errors import GatewayError, InvalidRequest
from wire.openai import ChatRequest, ChatResult, EmbeddingRequest, StreamChunk, Usage

log = logging.getLogger("gateway")

T = TypeVar("T")
P = TypeVar("P")


# One attempt's call: (the name being tried, the deployment chosen) -> the answer.
Call = Callable[[Route, Deployment], Awaitable[T]]
# A chat call's attempt made another way: (the deployment, its chat provider, its upstream
# model id) -> ...
Attempt = Callable[[Deployment, ChatProvider, str], Awaitable[ChatResult]]
StreamAttempt = Callable[[Deployment, ChatProvider, str], AsyncGenerator[StreamChunk, None]]
_NONE: frozenset[Deployment] = frozenset()  # (a first attempt excludes no deployment)
# What a model without chat is, for the 400 of a chat call naming it.
_NOT_CHAT: tuple[tuple[type, str], ...] = (
    (Transcriber, "a speech-to-text model (/v1/audio/transcriptions)"),
    (OCRProvider, "a tool (/v1/tools/ocr)"),
    (Detector, "a tool (/v1/tools/detect)"),
)


class Router(Deployments):
    """The calls on a model name's deployments (see Deployments for the table and choice)."""

    # -- one request: attempts, retries, fallbacks ------------------------------------------

    def _attempt(self, route: Route, deployment: Deployment, probe: bool, *, asked: str,
                 judged: bool = True) -> _Attempt:
        """One call to ``deployment``, counted in flight; its outcome goes to the breaker, an
        upstream failure to the metrics (under ``asked``, the name the client sent) and the
        log (a client error raised before any upstream call is only logged as the client's).
        ``judged=False``: the rest of a stream whose opening was already judged a
        success (a later failure still counts)."""
        return _Attempt(self, route, deployment, probe, asked, judged)

    def _count_failure(self, route: Route, deployment: Deployment, error: GatewayError,
                       asked: str) -> None:
        provider = deployment.config.provider
        if error.is_client_error:  # refused before any upstream call: the client's error
            log.info("model %s (%s, %s) refused the request: %d %s: %s", route.model, provider,
                     deployment.where, error.status, error.code, error.message)
            return
        self._metrics.upstream_errors.labels(asked, provider, error.code or "error").inc()
        via = "" if asked == route.model else f" (for {asked})"
        log.warning("model %s%s (%s, %s) failed: %d %s: %s", route.model, via, provider,
                    deployment.where, error.status, error.code, error.message)

    async def _try(self, route: Route, call: Call[T], failures: Failures[Deployment],
                   admission: Admission | None, asked: str) -> tuple[T, Deployment] | None:
        """Attempts on the deployments of one name, retried as their config says. A client
        error is raised at once; None when the name gave up (``failures`` says why)."""
        attempts: Attempts[Deployment] | None = None  # (made at the first failure)
        choice = await self._choose(route, _NONE, admission)
        while choice is not None:
            deployment, probe = choice
            try:
                with self._attempt(route, deployment, probe, asked=asked):
                    return await call(route, deployment), deployment
            except RETRYABLE as error:
                failures.note(deployment, error)
                attempts = attempts or Attempts()
                if not attempts.failed(deployment, error, deployment.config):
                    return None
                log.info("retrying model %s (retry %d of %d)", route.model, attempts.retries,
                         deployment.config.retries)
            choice = await self._next(route, attempts, admission)
        if attempts is None:
            log.warning("model %s: every deployment is cooling down", route.model)
        return None

    def _fallback_chain(self, route: Route) -> Iterator[Route]:
        """The fallbacks of ``route``, each followed by its own (depth first); a name that
        comes round again (a cycle) is not tried twice."""
        seen = {route.model}
        pending = list(reversed(route.fallbacks))
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            target = self.resolve(name)
            yield target
            pending.extend(reversed(target.fallbacks))

    async def _run(self, route: Route, call: Call[T], admission: Admission | None = None,
                   usable: Callable[[Route], bool] | None = None) -> tuple[T, Route, Deployment]:
        """``call`` on a deployment of ``route``, retried, then on its fallbacks (those
        ``usable``); returns the answer and the name and deployment that gave it."""
        failures: Failures[Deployment] = Failures()
        answer = await self._try(route, call, failures, admission, route.model)
        if answer is not None:
            return answer[0], route, answer[1]
        for target in self._fallback_chain(route):
            if usable is not None and not usable(target):
                continue
            log.warning("request for model %s: falling back to %s", route.model, target.model)
            answer = await self._try(target, call, failures, admission, route.model)
            if answer is not None:
                return answer[0], target, answer[1]
        raise failures.final(route.model)

    # -- the calls ------------------------------------------------------------------------------

    def _admission(self, route: Route, request: ChatRequest | EmbeddingRequest
                   ) -> Admission | None:
        quotas = self._quotas
        if quotas is None:
            return None
        if isinstance(request, EmbeddingRequest):
            return Admission(lambda: quotas.embedding_cost(request))
        return Admission(lambda: quotas.chat_cost(request, route.deployments[0].provider))

    async def _settle(self, admission: Admission | None, usage: Usage | None) -> None:
        if admission is not None and admission.charged and self._quotas is not None:
            await self._quotas.settle_deployments(admission, usage)

    async def chat(self, route: Route, request: ChatRequest, meter: Meter | None = None, *,
                   via: Attempt | None = None) -> ChatResult:
        """``via(deployment, upstream_model)``, when given, makes each attempt's call in place
        of the provider's ``chat`` (/v1/responses: native or translated per deployment);
        ``request`` still makes the rate limits' estimate."""
        async def call(target: Route, deployment: Deployment) -> ChatResult:
            chat = deployment.chat
            if chat is None:
                raise _no_chat(target, deployment)
            model = deployment.upstream_model(target.model)
            if via is not None:
                return await via(deployment, chat, model)
            return await chat.chat(request, model)

        admission = self._admission(route, request)
        try:
            result, _, deployment = await self._run(route, call, admission)
        except BaseException:
            await self._settle(admission, Usage(0, 0))
            raise
        if meter is not None:
            meter.config = deployment.config
        await self._settle(admission, result.usage)
        if result.usage:
            self._metrics.count_tokens(route.model, result.usage.prompt_tokens,
                                       result.usage.completion_tokens)
        return result

    async def stream(self, route: Route, request: ChatRequest, *, keep_usage_only: bool = False,
                     meter: Meter | None = None, via: StreamAttempt | None = None
                     ) -> AsyncGenerator[StreamChunk, None]:
        """The chunks of one answer; the usage-only chunk only when the client asked for usage
        or the caller wants to see it anyway (``keep_usage_only``: it drops it itself).
        Retries and fallbacks happen until a deployment has produced its first chunk; an error
        after that ends the stream. ``via``: as for ``chat``."""

        async def open_stream(target: Route, deployment: Deployment
                              ) -> tuple[StreamChunk | None, AsyncGenerator[StreamChunk, None]]:
            chat = deployment.chat
            if chat is None:
                raise _no_chat(target, deployment)
            model = deployment.upstream_model(target.model)
            upstream = (via(deployment, chat, model) if via is not None
                        else chat.stream(request, model))
            try:
                return await anext(upstream, None), upstream
            except BaseException:
                await upstream.aclose()
                raise

        admission = self._admission(route, request)
        try:
            (first, upstream), target, deployment = await self._run(route, open_stream,
                                                                    admission)
        except BaseException:
            await self._settle(admission, Usage(0, 0))
            raise
        if meter is not None:
            meter.config = deployment.config
        wants_usage = request.include_usage or keep_usage_only
        usage = None
        try:
            async with aclosing(upstream) as chunks:
                with self._attempt(target, deployment, False, asked=route.model, judged=False):
                    if first is not None:
                        if first.usage is not None:
                            usage = self._count(route, first.usage)
                        if wants_usage or not first.usage_only:
                            yield first
                    async for chunk in chunks:  # (per relayed read: kept short)
                        if chunk.usage is not None:
                            usage = self._count(route, chunk.usage)
                        if wants_usage or not chunk.usage_only:
                            yield chunk
        finally:
            await self._settle(admission, usage)

    def _count(self, route: Route, usage: Usage) -> Usage:
        self._metrics.count_tokens(route.model, usage.prompt_tokens, usage.completion_tokens)
        return usage

    async def embed(self, route: Route, request: EmbeddingRequest, meter: Meter | None = None
                    ) -> ChatResult:
        async def embed(provider: EmbeddingProvider, model: str) -> ChatResult:
            return await provider.embed(request, model)

        result = await self._capability_call(route, EmbeddingProvider, embed, "embeddings",
                                              self._admission(route, request), meter)
        if result.usage:
            self._metrics.count_tokens(route.model, result.usage.prompt_tokens, 0)
        return result

    async def invoke(self, route: Route, capability: type[P],
                     call: Callable[[P, str], Awaitable[T]], *, what: str) -> T:
        """A capability call other than chat and embeddings (transcribe, ocr, detect, images):
        ``call(provider, upstream_model)`` on a deployment of ``route`` whose provider has
        ``capability`` (a runtime-checkable Protocol), with the retries, fallbacks (only those
        that have it too), breakers and deployment rpm that chat has. ``what`` names the
        capability in the 400 for a model without it ("does not support {what}")."""
        admission = None if self._quotas is None else Admission(no_tokens)
        return await self._capability_call(route, capability, call, what, admission)

    async def _capability_call(self, route: Route, capability: type[P],
                               call: Callable[[P, str], Awaitable[T]], what: str,
                               admission: Admission | None, meter: Meter | None = None
                               ) -> T:
        usable = _has(capability)
        if not usable(route):
            raise unsupported(route.model, what)

        async def attempt(target: Route, deployment: Deployment) -> T:
            provider = deployment.provider
            if not isinstance(provider, capability):
                raise unsupported(target.model, what)
            return await call(provider, deployment.upstream_model(target.model))

        try:
            result, _, deployment = await self._run(route, attempt, admission, usable=usable)
        finally:
            await self._settle(admission, None)  # (for embeddings the estimate was the usage)
        if meter is not None:
            meter.config = deployment.config
        return result


class _Attempt:
    """``Router._attempt``'s context manager: a class, not ``@contextmanager`` (whose
    generator and wrapper cost a few us on every call)."""

    __slots__ = ("asked", "deployment", "judged", "probe", "route", "router")

    def __init__(self, router: Router, route: Route, deployment: Deployment, probe: bool,
                 asked: str, judged: bool) -> None:
        self.router, self.route, self.deployment = router, route, deployment
        self.probe, self.asked, self.judged = probe, asked, judged

    def __enter__(self) -> None:
        self.deployment.in_flight += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        deployment = self.deployment
        try:
            if exc is None:
                if self.judged:
                    deployment.breaker.success(self.probe)
            elif isinstance(exc, GatewayError):
                self.router._count_failure(self.route, deployment, exc, self.asked)
                if is_retryable(exc):
                    deployment.breaker.failure(self.probe)
                else:  # the client's own error says nothing about the deployment's health
                    deployment.breaker.release(self.probe)
            else:
                deployment.breaker.release(self.probe)
        finally:
            deployment.in_flight -= 1


def unsupported(model: str, what: str, kind: str = "") -> InvalidRequest:
    """The 400 of a call to a model without the capability it needs (``what``: "chat
    completions", "embeddings", ...); ``kind`` says what the model is instead."""
    if kind:
        return InvalidRequest(f"The model '{model}' is {kind}; it does not support {what}.",
                              param="model")
    return InvalidRequest(f"The model '{model}' does not support {what}.", param="model")


def _no_chat(target: Route, deployment: Deployment) -> InvalidRequest:
    kind = next((kind for capability, kind in _NOT_CHAT
                 if isinstance(deployment.provider, capability)), "")
    return unsupported(target.model, "chat completions", kind)


def _has(capability: type) -> Callable[[Route], bool]:
    def usable(route: Route) -> bool:
        return all(isinstance(d.provider, capability) for d in route.deployments)
    return usable


__all__ = ["Attempt", "Call", "Deployment", "Route", "Router", "StreamAttempt", "unsupported"]
