"""The app's shared, typed state: made once in the lifespan, reached from every route."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.auth import Authenticator
from gateway.cache import ResponseCache
from gateway.config import GatewayConfig
from gateway.metrics import Metrics
from gateway.quotas import Quotas
from gateway.router import Router
from gateway.store import Store
from gateway.usage import UsageLog
from providers.http import HTTPClient


@dataclass(frozen=True, slots=True)
class AppState:
    config: GatewayConfig
    router: Router
    store: Store
    auth: Authenticator
    metrics: Metrics
    http: HTTPClient
    quotas: Quotas
    usage: UsageLog
    cache: ResponseCache | None = None  # None: no cache: configured


def app_state(request: Request) -> AppState:
    state: AppState = request.state.gateway
    return state
