"""A call's passage through the limits: admitted against its key's buckets before it runs,
settled against its real usage when its answer ends.

Keys: a virtual key's own ``rpm``/``tpm``, else the ``limits:`` defaults; the master key (and
everyone, when auth is off) has no key limits. Deployments: their ``rpm``/``tpm`` from
models.yaml, checked by the router when it picks one (``deployment_buckets``). Every admitted
call's response carries OpenAI's ``x-ratelimit-*`` headers for the key's own limits.
When the store is down, calls fail with 503, or pass unlimited with ``limits.fail_open``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from gateway.access.auth import Caller
from gateway.access.limits import (
    KEY_LIMITED,
    OK,
    Bucket,
    BucketState,
    Decision,
    Limiter,
    bucket_key,
)
from gateway.config import LimitsConfig
from gateway.later import FlushLater
from gateway.metrics import Metrics
from gateway.store import StoreUnavailable
from gateway.tokens import TokenEstimator, prompt_chars
from providers.base import DeploymentConfig
from wire.errors import RateLimited
from wire.openai import ChatRequest, EmbeddingRequest, Usage

log = logging.getLogger("gateway")

SETTLE_DELAY_S = 0.05


async def no_tokens() -> int:
    """The cost estimate of a call that costs no tokens up front (tools, jobs, uploads)."""
    return 0


@dataclass(slots=True)
class Ticket:
    """What one call took: its token estimate and the tpm buckets to settle."""

    tokens: int = 0
    tpm_buckets: list[Bucket] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeploymentLimits:
    """A deployment's own buckets (its ``rpm``/``tpm`` in models.yaml)."""

    rpm: int | None
    tpm: int | None
    name: str  # unique among deployments, the same on every replica

    @classmethod
    def of(cls, config: DeploymentConfig, where: str) -> DeploymentLimits | None:
        if config.rpm is None and config.tpm is None:
            return None
        return cls(config.rpm, config.tpm, f"{config.name}|{where}")

    def buckets(self, tokens: int) -> list[Bucket]:
        buckets = []
        if self.rpm is not None:
            buckets.append(Bucket(bucket_key("d", self.name, "rpm"), self.rpm, 1))
        if self.tpm is not None:
            buckets.append(Bucket(bucket_key("d", self.name, "tpm"), self.tpm, tokens))
        return buckets


@dataclass(slots=True)
class Admission:
    """One call's passage through the deployments' limits: its token estimate (counted once,
    when a tpm limit first needs it) and the tpm buckets its attempts took, to settle."""

    cost: Callable[[], Awaitable[int]]
    tokens: int | None = None
    charged: list[Bucket] = field(default_factory=list)


def format_reset(ms: int) -> str:
    """A duration as OpenAI writes its resets: ``12ms``, ``1s``, ``17.5s``, ``6m0s``."""
    if ms < 1000:
        return f"{ms}ms"
    minutes, seconds = divmod(ms / 1000, 60)
    text = f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    if minutes >= 60:
        return f"{int(minutes // 60)}h{int(minutes % 60)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


def _headers(states: tuple[BucketState, ...], units: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for state, unit in zip(states, units, strict=True):
        headers[f"x-ratelimit-limit-{unit}"] = str(state.limit)
        headers[f"x-ratelimit-remaining-{unit}"] = str(state.remaining)
        headers[f"x-ratelimit-reset-{unit}"] = format_reset(state.reset_ms)
    return headers


# A prompt of more characters than this is counted in a thread: tiktoken needs about a second
# for 10 MB, which on the event loop would stall every other stream (bench/soak.py).
THREAD_COUNT_CHARS = 100_000


def estimate_cost(request: ChatRequest, prompt_tokens: int) -> int:
    """Prompt tokens plus the most the answer may take (max_tokens for each of n choices)."""
    most = request.max_completion_tokens or request.max_tokens or 0
    return prompt_tokens + most * (request.n or 1)


class Quotas:
    def __init__(self, limiter: Limiter, defaults: LimitsConfig, metrics: Metrics) -> None:
        self.limiter = limiter
        self.estimator = TokenEstimator()
        self._defaults = defaults
        self._metrics = metrics
        self._warned_at = 0.0
        self._pending: dict[str, Bucket] = {}  # settlements not sent yet, by bucket
        self._flusher = FlushLater(SETTLE_DELAY_S, self.flush)

    def _key_limits(self, caller: Caller) -> tuple[int | None, int | None]:
        if caller.key_id is None:
            return None, None
        return caller.rpm or self._defaults.rpm, caller.tpm or self._defaults.tpm

    async def chat_cost(self, request: ChatRequest, provider: object) -> int:
        """The tokens a chat call may take: its prompt, counted by the local model's own
        tokenizer where it has one, plus the most its answer may take."""
        # (TokenCounter's method, found by getattr: an isinstance check against a runtime
        # Protocol costs about 10 us a call)
        count = getattr(provider, "count_prompt_tokens", None)
        if prompt_chars(request) > THREAD_COUNT_CHARS:
            await self.estimator.ready()
            counted = await asyncio.to_thread(self._count_prompt, request, count)
            return estimate_cost(request, counted)
        prompt: int | None = count(request) if count is not None else None
        if prompt is None:
            await self.estimator.ready()
            prompt = self.estimator.count_messages(request)
        return estimate_cost(request, prompt)

    def _count_prompt(self, request: ChatRequest, count: Callable[[ChatRequest], int | None]
                      | None) -> int:
        prompt = count(request) if count is not None else None
        return prompt if prompt is not None else self.estimator.count_messages(request)

    async def embedding_cost(self, request: EmbeddingRequest) -> int:
        inputs = request.input
        if isinstance(inputs, str):
            inputs = [inputs]
        await self.estimator.ready()
        texts = sum(len(item) for item in inputs if isinstance(item, str))
        if texts > THREAD_COUNT_CHARS:
            return await asyncio.to_thread(self._count_inputs, inputs)
        return self._count_inputs(inputs)

    def _count_inputs(self, inputs: list[str] | list[int] | list[list[int]]) -> int:
        return sum(self.estimator.count_text(item) if isinstance(item, str)
                   else len(item) if isinstance(item, list) else 1 for item in inputs)

    async def admit(self, caller: Caller, cost: Callable[[], Awaitable[int]]) -> Ticket:
        """Take one request (and the call's estimated ``cost`` in tokens, counted only when a
        tpm limit applies) from the caller's buckets, or raise 429."""
        rpm, tpm = self._key_limits(caller)
        if rpm is None and tpm is None:
            return Ticket()
        tokens = await cost() if tpm is not None else 0
        buckets, units = [], []
        if rpm is not None:
            buckets.append(Bucket(bucket_key("k", str(caller.key_id), "rpm"), rpm, 1))
            units.append("requests")
        tpm_bucket = None
        if tpm is not None:
            tpm_bucket = Bucket(bucket_key("k", str(caller.key_id), "tpm"), tpm, tokens)
            buckets.append(tpm_bucket)
            units.append("tokens")
        decision = await self.take(buckets, (), refused="Rate limit reached for this API key",
                                   units=tuple(units))
        if decision is None:
            return Ticket()
        return Ticket(tokens, [tpm_bucket] if tpm_bucket else [],
                      _headers(decision.states, tuple(units)))

    async def admit_tokens(self, key_id: str, tpm: int | None,
                           cost: Callable[[], Awaitable[int]]) -> Ticket:
        """A background call of a key (a job's model call): only its tokens, from the key's
        ``tpm`` (else the ``limits:`` default); 429 while the bucket has no room, and a
        ``RateLimited`` with ``retry_after`` 0 when the call is larger than the whole tpm."""
        tpm = tpm or self._defaults.tpm
        if tpm is None:
            return Ticket()
        tokens = await cost()
        if tokens > tpm:
            raise RateLimited(f"One call of this job needs {tokens} tokens, more than the "
                              f"key's whole tpm ({tpm}).", retry_after=0)
        bucket = Bucket(bucket_key("k", key_id, "tpm"), tpm, tokens)
        decision = await self.take([bucket], (), refused="Rate limit reached for this API key",
                                   units=("tokens",))
        return Ticket(tokens, [bucket]) if decision is not None else Ticket()

    async def take(self, first: list[Bucket], candidates: tuple[list[Bucket], ...], *,
                   refused: str, units: tuple[str, ...] = ()) -> Decision | None:
        """One decision; None when the store is down and ``fail_open`` lets the call pass."""
        try:
            decision = await self.limiter.take(first, candidates)
        except StoreUnavailable:
            if not self._defaults.fail_open:
                raise
            self._warn("the store is down: serving without limits (limits.fail_open)")
            return None
        if decision.status != OK:
            who = "key" if decision.status == KEY_LIMITED else "deployment"
            self._metrics.rate_limited.labels(who).inc()
            seconds = max(1, math.ceil(decision.retry_after_ms / 1000))
            headers = _headers(decision.states, units) if units and decision.states else {}
            raise RateLimited(f"{refused}. Try again in {seconds}s.", retry_after=seconds,
                              headers=headers)
        return decision

    async def pick(self, candidates: Sequence[DeploymentLimits | None], admission: Admission,
                   model: str) -> int:
        """The first of ``candidates`` (in order of preference) with room in its buckets,
        which are taken; 429 when none has room. A candidate without limits always has."""
        if candidates[0] is None:
            return 0
        if admission.tokens is None and any(c is not None and c.tpm for c in candidates):
            admission.tokens = await admission.cost()
        tokens = admission.tokens or 0
        groups = tuple(c.buckets(tokens) if c is not None else [] for c in candidates)
        decision = await self.take([], groups, refused=(
            f"Every deployment of the model '{model}' is at its rate limit"))
        choice = decision.choice if decision is not None else 0
        chosen = candidates[choice]
        if decision is not None and chosen is not None and chosen.tpm is not None:
            admission.charged.append(chosen.buckets(tokens)[-1])
        return choice

    async def settle_deployments(self, admission: Admission, usage: Usage | None) -> None:
        """The last attempt's tpm bucket is settled against the usage; earlier (failed)
        attempts give their estimate back."""
        if not admission.charged:
            return
        tokens = admission.tokens or 0
        *failed, last = admission.charged
        adjust = [Bucket(b.key, b.limit, -tokens) for b in failed]
        if usage is not None:
            used = usage.prompt_tokens + usage.completion_tokens
            adjust.append(Bucket(last.key, last.limit, used - tokens))
        self._adjust_soon(adjust)

    async def settle(self, ticket: Ticket, usage: Usage | None) -> None:
        """Give back (or take more of) what the estimate got wrong, once the answer is known."""
        if not ticket.tpm_buckets or usage is None:
            return
        delta = usage.prompt_tokens + usage.completion_tokens - ticket.tokens
        self._adjust_soon([Bucket(b.key, b.limit, delta) for b in ticket.tpm_buckets])

    def _adjust_soon(self, buckets: list[Bucket]) -> None:
        """Settlements are gathered for ``SETTLE_DELAY_S`` and sent in one script call: a
        busy gateway settles many calls in one round trip, not one round trip per call."""
        for bucket in buckets:
            if bucket.cost:
                known = self._pending.get(bucket.key)
                self._pending[bucket.key] = Bucket(bucket.key, bucket.limit,
                                                   bucket.cost + (known.cost if known else 0))
        if self._pending:
            self._flusher.soon()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            await self.limiter.adjust([b for b in pending.values() if b.cost])
        except StoreUnavailable:
            self._warn("the store is down: token usage not settled")

    async def aclose(self) -> None:
        await self._flusher.aclose()

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at > 10:
            self._warned_at = now
            log.warning(message)
