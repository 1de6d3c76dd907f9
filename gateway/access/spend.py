"""What calls cost, and the caps on a virtual key beyond its rpm/tpm: a budget in USD per
period (``max_budget_usd``, ``budget_period``), requests per UTC day (``rpd``) and requests in
flight (``max_parallel``).

A deployment's prices (models.yaml, USD per million tokens) turn a call's usage into its cost;
the router notes which deployment answered in the call's ``Meter``. The spend of a key with a
budget is one integer counter per period in the store (nano-USD, ``gw:spend:{key}:{period}``),
added to with one atomic INCRBY when the call's answer has ended, so replicas on one Redis
share it; a call is refused with 429 ``insufficient_quota`` before it goes upstream once the
counter has reached the budget. ``rpd`` is a counter per key and UTC day; ``max_parallel`` a
lease per call in flight (``Store.lease``), given back when the call ends, lapsing after
``LEASE_TTL_S`` should its replica die.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from gateway.access.keys import VirtualKey
from gateway.store import Store, StoreUnavailable
from providers.base import DeploymentConfig
from wire.errors import InsufficientQuota, RateLimited
from wire.openai import Usage

log = logging.getLogger("gateway")

NANO = 1_000_000_000  # spend is counted in nano-USD: integers add up exactly
LEASE_TTL_S = 3600.0
_PERIOD_TTL_S = {"day": 2 * 86400.0, "month": 62 * 86400.0, "total": None}


def cost_usd(config: DeploymentConfig | None, usage: Usage | None) -> float:
    """A call's cost at ``config``'s prices; 0 without prices or usage. Cached prompt tokens
    cost ``cached_input_cost_per_mtok`` (the input price when that is not set)."""
    if config is None or usage is None:
        return 0.0
    inp, out = config.input_cost_per_mtok or 0.0, config.output_cost_per_mtok or 0.0
    cached_price = config.cached_input_cost_per_mtok
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    if cached_price is None:
        cached_price = inp
    return ((usage.prompt_tokens - cached) * inp + cached * cached_price
            + usage.completion_tokens * out) / 1_000_000


@dataclass(slots=True)
class Meter:
    """Filled by the router: the deployment that gave the answer (its prices)."""

    config: DeploymentConfig | None = None

    def cost(self, usage: Usage | None) -> float:
        return cost_usd(self.config, usage)


def period_id(period: str, now: dt.datetime | None = None) -> str:
    moment = now or dt.datetime.now(dt.UTC)
    if period == "day":
        return moment.date().isoformat()
    if period == "month":
        return moment.strftime("%Y-%m")
    return "total"


def _until_midnight_s(now: dt.datetime | None = None) -> int:
    moment = now or dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(moment.date() + dt.timedelta(days=1), dt.time(),
                                   tzinfo=dt.UTC)
    return max(1, int((midnight - moment).total_seconds()) + 1)


class KeyCaps:
    """Budgets, ``rpd`` and ``max_parallel`` of virtual keys, in the shared store. When the
    store is down, calls fail with 503, or pass unchecked with ``limits.fail_open``."""

    def __init__(self, store: Store, fail_open: bool = False) -> None:
        self._store = store
        self._fail_open = fail_open

    async def admit(self, key: VirtualKey) -> tuple[str | None, str | None]:
        """The budget checked, a ``max_parallel`` slot and one request of the day taken:
        (the slot, the day's counter); 429 when a cap refuses."""
        try:
            await self.check_budget(key)
            lease = await self.lease(key)
            try:
                return lease, await self.take_request_of_day(key)
            except BaseException:
                await self.release(key, lease)
                raise
        except StoreUnavailable:
            if not self._fail_open:
                raise
            log.warning("the store is down: key caps not checked (limits.fail_open)")
            return None, None

    @staticmethod
    def _spend_key(key: VirtualKey) -> str:
        return f"gw:spend:{key.id}:{period_id(key.budget_period)}"

    async def spent_usd(self, key: VirtualKey) -> float:
        raw = await self._store.get(self._spend_key(key))
        return int(raw) / NANO if raw is not None else 0.0

    async def check_budget(self, key: VirtualKey) -> None:
        if key.max_budget_usd is None:
            return
        spent = await self.spent_usd(key)
        if spent >= key.max_budget_usd:
            period = "" if key.budget_period == "total" else f" for this {key.budget_period}"
            raise InsufficientQuota(
                f"This key has reached its budget{period} (max_budget_usd "
                f"{key.max_budget_usd:g}; spent {spent:.6f}).")

    async def add_spend(self, key: VirtualKey, usd: float) -> None:
        """Settle one call's cost (called once per call, when its answer has ended)."""
        if key.max_budget_usd is None or usd <= 0:
            return
        await self._store.incr(self._spend_key(key), round(usd * NANO),
                               ttl_s=_PERIOD_TTL_S[key.budget_period])

    async def take_request_of_day(self, key: VirtualKey) -> str | None:
        """Count one request against ``rpd``; 429 past it. Returns the counter's name, to
        give the request back should a later check refuse the call."""
        if key.rpd is None:
            return None
        name = f"gw:rpd:{key.id}:{period_id('day')}"
        if await self._store.incr(name, 1, ttl_s=2 * 86400) > key.rpd:
            await self._store.incr(name, -1)
            wait = _until_midnight_s()
            raise RateLimited(f"Requests per day limit reached for this API key ({key.rpd}). "
                              f"Try again in {wait}s.", retry_after=wait,
                              headers={"x-ratelimit-limit-requests-day": str(key.rpd)})
        return name

    async def give_back_request(self, name: str | None) -> None:
        if name is not None:
            await self._store.incr(name, -1)

    async def lease(self, key: VirtualKey) -> str | None:
        """A slot among the key's ``max_parallel``; 429 when they are all taken."""
        if key.max_parallel is None:
            return None
        holder = secrets.token_hex(8)
        if not await self._store.lease(f"gw:par:k:{key.id}", holder, key.max_parallel,
                                       LEASE_TTL_S):
            raise RateLimited(f"This API key already has {key.max_parallel} requests in "
                              "flight (max_parallel). Try again in 1s.", retry_after=1)
        return holder

    async def release(self, key: VirtualKey, holder: str | None) -> None:
        if holder is not None:
            await self._store.unlease(f"gw:par:k:{key.id}", holder)
