"""The app's shared, typed state: made once in the lifespan, reached from every route."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.access.auth import Authenticator
from gateway.access.quotas import Quotas
from gateway.access.spend import KeyCaps
from gateway.access.usage import UsageLog
from gateway.cache.response import ResponseCache
from gateway.config import GatewayConfig
from gateway.guardrails.pii import GuardrailBook
from gateway.jobs.engine import Engine
from gateway.jobs.inputs import Inputs
from gateway.metrics import Metrics
from gateway.prompts.conversations import ConversationStore
from gateway.prompts.templates import PromptStore
from gateway.responses.store import ResponseStore
from gateway.routing.router import Router
from gateway.store import Store
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
    caps: KeyCaps
    prompts: PromptStore
    guardrails: GuardrailBook
    conversations: ConversationStore
    jobs: Engine
    inputs: Inputs
    responses: ResponseStore
    cache: ResponseCache | None = None  # None: no cache: configured


def app_state(request: Request) -> AppState:
    """The gateway's shared state (the lifespan's ``{"gateway": ...}``, which the server
    copies into every request's scope; read from the scope, not through ``request.state``'s
    attribute wrapper: every request asks)."""
    state: AppState = request.scope["state"]["gateway"]
    return state
