"""create_app(config, settings): the routes and the lifespan that makes the shared clients.
(The one error handler is the middleware's: gateway/http/middleware.py.)"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware

from gateway import config as config_module
from gateway import logs
from gateway.access.auth import Authenticator
from gateway.access.keys import KeyStore
from gateway.access.limits import create_limiter
from gateway.access.quotas import Quotas
from gateway.access.spend import KeyCaps
from gateway.access.usage import UsageLog
from gateway.cache.response import create_cache
from gateway.config import GatewayConfig
from gateway.docs import pages as doc_pages
from gateway.guardrails.pii import GuardrailBook
from gateway.http.cors import CORS
from gateway.http.middleware import GatewayMiddleware
from gateway.http.routing import App
from gateway.jobs.charges import KeyCharges
from gateway.jobs.factory import create_engine, watch_queue
from gateway.jobs.inputs import Inputs
from gateway.jobs.tools import Tools
from gateway.logs import RequestLog
from gateway.metrics import Metrics
from gateway.prompts.conversations import ConversationStore
from gateway.prompts.templates import PromptStore
from gateway.responses.store import ResponseStore
from gateway.routes import (
    audio,
    chat,
    embeddings,
    extract,
    health,
    images,
    jobs,
    keys,
    models,
    summarize,
    tools,
    usage,
)
from gateway.routes import console as console_routes
from gateway.routes import conversations as conversation_routes
from gateway.routes import prompts as prompt_routes
from gateway.routes import responses as response_routes
from gateway.routing.router import Router
from gateway.state import AppState
from gateway.store import create_store
from providers.http import create_http_client

log = logging.getLogger("gateway")


@dataclass(frozen=True, slots=True)
class Settings:
    """What comes from the environment rather than from models.yaml."""

    master_key: str | None = None
    redis_url: str | None = None
    log_format: str = "text"  # "json": one JSON line per request too (gateway/logs.py)
    log_skip_paths: frozenset[str] = frozenset(logs.DEFAULT_SKIP_PATHS)  # --log-skip-paths

    @classmethod
    def from_env(cls) -> Settings:
        return cls(master_key=os.environ.get("GATEWAY_MASTER_KEY") or None,
                   redis_url=os.environ.get("REDIS_URL") or None,
                   log_format=os.environ.get("GATEWAY_LOG_FORMAT") or "text",
                   log_skip_paths=logs.skip_paths(os.environ.get("GATEWAY_LOG_SKIP_PATHS")))


def cors_middleware(origins: tuple[str, ...]) -> list[Middleware]:
    """The CORS piece, outermost, only when origins are configured (no cost otherwise)."""
    return [Middleware(CORS, origins=origins)] if origins else []


YOUNG_GC_THRESHOLD = 10_000


def _freeze_startup_objects() -> tuple[int, int, int]:
    """Move everything alive after start-up (modules, config, clients: never garbage) out of
    the collector's reach. Otherwise every full collection walks them all again, a pause of
    tens of ms in the middle of requests: the p99 of ``bench/overhead.py``. And collect the
    young generation only once 10,000 objects (not 700) have accumulated: the requests in
    flight hold a few thousand, which the default made it walk again and again (8-10% of the
    CPU at c=32), while requests leave no reference cycles behind to collect. Returns the
    thresholds it replaced."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_GC_THRESHOLD), *thresholds[1:])
    return thresholds


async def _close_all(*closers: Callable[[], Awaitable[None]]) -> None:
    """Close every shared client in turn, each even when one before it fails (as the job
    engine's does with Redis down): otherwise the upstream HTTP session and the Redis pool
    after it were left open. A failure is logged as a warning, not raised."""
    for close in closers:
        try:
            await close()
        except Exception as exc:  # one client's failure must not stop the rest
            log.warning("shutdown: %s failed: %s: %s", getattr(close, "__qualname__", close),
                        type(exc).__name__, exc)


def create_app(config: GatewayConfig, settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AppState]]:
        http = create_http_client(config.server.http_client)
        store = create_store(settings.redis_url)
        quotas = Quotas(create_limiter(store), config.limits, metrics)
        router = Router(config.deployments, http, metrics, quotas)
        usage_log = UsageLog(store)
        key_store = KeyStore(store)
        inputs = Inputs(store, config.storage, config.jobs.inline_max_mb,
                        config.jobs.result_ttl_s)
        caps = KeyCaps(store, config.limits.fail_open)
        tools = Tools(router, inputs, usage_log, config.jobs.chunk_tokens,
                      charges=KeyCharges(quotas, caps))
        engine = create_engine(config.jobs, settings.redis_url, tools.functions(), metrics,
                               tools.release)
        state = AppState(
            config=config,
            router=router,
            store=store,
            auth=Authenticator(settings.master_key, key_store),
            metrics=metrics,
            http=http,
            quotas=quotas,
            usage=usage_log,
            caps=caps,
            prompts=PromptStore(store),
            guardrails=GuardrailBook(config.guardrails),
            conversations=ConversationStore(store),
            jobs=engine,
            inputs=inputs,
            responses=ResponseStore(store, config.responses.ttl_s),
            cache=create_cache(config.cache, store, router, metrics),
        )
        auth = "master key" if state.auth.has_master else "off until a virtual key exists"
        count = len(config.deployments)
        log.info("gateway ready: %d deployment%s, store=%s, auth=%s", count,
                 "" if count == 1 else "s", store.backend, auth)
        for warning in config.warnings():
            log.warning("%s", warning)
        watcher: asyncio.Task[None] | None = None
        thresholds: tuple[int, int, int] | None = None
        try:
            await key_store.start()
            await router.start()
            await engine.start()
            watcher = asyncio.create_task(watch_queue(engine, metrics))
            thresholds = _freeze_startup_objects()
            yield {"gateway": state}
        finally:
            gc.unfreeze()
            if thresholds is not None:
                gc.set_threshold(*thresholds)
            if watcher is not None:
                watcher.cancel()
            await _close_all(engine.aclose, router.aclose, key_store.aclose,
                             usage_log.aclose, quotas.aclose, http.aclose, store.aclose)

    max_body = int(config.server.max_body_mb * 1024 * 1024)
    return App(
        routes=[*chat.routes, *embeddings.routes, *models.routes, *keys.routes, *usage.routes,
                *health.routes, *images.routes, *audio.routes, *tools.routes,
                *prompt_routes.routes, *conversation_routes.routes, *jobs.routes,
                *extract.routes, *summarize.routes, *response_routes.routes,
                *console_routes.routes, *doc_pages.routes()],
        middleware=[*cors_middleware(config.server.cors_allow_origins),
                    Middleware(GatewayMiddleware, metrics=metrics, max_body_bytes=max_body,
                               request_log=RequestLog(skip=settings.log_skip_paths)
                               if settings.log_format == "json"
                               else None)],
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """The factory ``gateway serve`` hands to uvicorn (one call per worker process)."""
    logs.setup(os.environ.get("GATEWAY_LOG_LEVEL", "info"),
               os.environ.get("GATEWAY_LOG_FORMAT") or "text")
    path = config_module.find(os.environ.get("GATEWAY_CONFIG"))
    return create_app(config_module.load_or_embedded(path), Settings.from_env())
