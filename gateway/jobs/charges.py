"""A job's model calls charged to the key that posted the job, as that key's own chat calls
are: its budget checked before each call, its ``tpm`` (or the ``limits:`` default) taken by
the call's estimate and settled against the real usage, its spend added. (The router
charges the deployments' own ``rpm``/``tpm``.) The job carries the key's record, taken at
POST; the worker that runs it may be another replica.

A background job does not fail when its key is at its ``tpm``: the call waits for the
bucket (``Retry-After``) and goes on; a single call larger than the whole ``tpm`` fails the
job, as does a spent budget."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.access.keys import VirtualKey
from gateway.access.quotas import Quotas, Ticket
from gateway.access.spend import KeyCaps
from wire.errors import RateLimited
from wire.openai import Usage

MAX_WAITS = 120  # each at most a bucket's Retry-After (seconds)


def job_key(args: dict[str, Any]) -> VirtualKey | None:
    record = args.get("key")
    return VirtualKey.from_json(orjson.dumps(record)) if isinstance(record, dict) else None


@dataclass(frozen=True, slots=True)
class KeyCharges:
    quotas: Quotas
    caps: KeyCaps

    async def admit(self, key: VirtualKey | None, cost: Callable[[], Awaitable[int]]
                    ) -> Ticket:
        """The budget checked and the call's estimate taken from the key's tpm, waiting
        while the bucket is empty."""
        if key is None:
            return Ticket()
        await self.caps.check_budget(key)
        for _ in range(MAX_WAITS):
            try:
                return await self.quotas.admit_tokens(key.id, key.tpm, cost)
            except RateLimited as exc:
                if exc.retry_after <= 0:
                    raise  # never fits
                await asyncio.sleep(exc.retry_after)
        raise RateLimited(f"The job waited {MAX_WAITS} times for this key's tpm; retry later.")

    async def settle(self, key: VirtualKey | None, ticket: Ticket, usage: Usage | None,
                     cost_usd: float) -> None:
        if key is None:
            return
        await self.quotas.settle(ticket, usage or Usage(0, 0))
        await self.caps.add_spend(key, cost_usd)
