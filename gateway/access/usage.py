"""Tokens and requests per key, end user, model and day, in the shared store.

One store hash per UTC day (``gw:usage:2026-11-22``, kept 400 days); its fields are the JSON
list ``[key_id, user, model]`` followed by ``\\x00`` and ``p`` (prompt tokens), ``c``
(completion tokens), ``r`` (requests) or ``u`` (cost in nano-USD), so a query reads one
hash per day.

Calls are added up in memory and written every ``flush_s`` (one ``HINCRBY`` pipeline for all
the calls of that second), not once per call: recording costs a request nothing. A query
writes this replica's pending counts first; another replica's are at most ``flush_s`` late.
Counts that cannot be written (the store is down) are kept and written later.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.later import FlushLater
from gateway.store import Store, StoreUnavailable
from wire.errors import InvalidRequest

log = logging.getLogger("gateway")

RETENTION_DAYS = 400
DEFAULT_DAYS = 30
_COUNTERS = {"p": "prompt_tokens", "c": "completion_tokens", "r": "requests", "u": "cost_nano"}
NANO = 1_000_000_000
EPOCH = dt.date(1970, 1, 1)


@functools.lru_cache(maxsize=4096)
def _fields(key_id: str | None, user: str | None, model: str) -> tuple[str, str, str, str]:
    """The hash fields of one group's counters (made once per group: hot path)."""
    group = orjson.dumps([key_id, user, model]).decode() + "\x00"
    return group + "p", group + "c", group + "r", group + "u"


def day_of(moment: dt.datetime | None = None) -> dt.date:
    return (moment or dt.datetime.now(dt.UTC)).date()


def parse_day(value: str, param: str) -> dt.date:
    """``YYYY-MM-DD``, or unix seconds (the day they fall in, UTC)."""
    try:
        if value.isdigit():
            return dt.datetime.fromtimestamp(int(value), dt.UTC).date()
        return dt.date.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest(f"Invalid value for '{param}': use YYYY-MM-DD or unix seconds.",
                             param=param) from None


@dataclass(frozen=True, slots=True)
class UsageFilter:
    start: dt.date
    end: dt.date
    key_id: str | None = None
    user: str | None = None
    model: str | None = None

    def days(self) -> Iterator[dt.date]:
        day = self.start
        while day <= self.end:
            yield day
            day += dt.timedelta(days=1)

    def matches(self, key_id: str | None, user: str | None, model: str) -> bool:
        return ((self.key_id is None or self.key_id == key_id)
                and (self.user is None or self.user == user)
                and (self.model is None or self.model == model))


class UsageLog:
    def __init__(self, store: Store, flush_s: float = 1.0) -> None:
        self._store = store
        self._pending: dict[str, dict[str, int]] = {}  # hash name -> field -> amount
        self._flusher = FlushLater(flush_s, self.flush)
        self._warned = False
        self._day = (-1, "")  # (days since 1970, that day's hash name)

    def record(self, key_id: str | None, user: str | None, model: str, prompt: int,
               completion: int, *, day: dt.date | None = None, cost_usd: float = 0.0) -> None:
        name = f"gw:usage:{day.isoformat()}" if day else self._today()
        counters = self._pending.get(name)
        if counters is None:
            counters = self._pending[name] = {}
        p, c, r, u = _fields(key_id, user, model)
        counters[p] = counters.get(p, 0) + prompt
        counters[c] = counters.get(c, 0) + completion
        counters[r] = counters.get(r, 0) + 1
        if cost_usd:
            counters[u] = counters.get(u, 0) + round(cost_usd * NANO)
        self._flusher.soon()

    def _today(self) -> str:
        """Today's hash name (UTC), made once a day rather than once a call."""
        number = int(time.time()) // 86400
        if number != self._day[0]:
            self._day = (number, f"gw:usage:{EPOCH + dt.timedelta(days=number)}")
        return self._day[1]

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for name, counters in pending.items():
            try:
                await self._store.hincrby(name, counters, ttl_s=RETENTION_DAYS * 86400)
            except StoreUnavailable as exc:
                if not self._warned:
                    log.warning("usage not written yet (kept for later): %s", exc.message)
                self._warned = True
                kept = self._pending.setdefault(name, {})
                for field, amount in counters.items():
                    kept[field] = kept.get(field, 0) + amount
        if self._pending:
            self._flusher.soon()  # try the rest again later

    async def aclose(self) -> None:
        await self._flusher.aclose()

    async def query(self, where: UsageFilter) -> list[dict[str, Any]]:
        await self.flush()
        rows: list[dict[str, Any]] = []
        for day in where.days():
            counters = await self._store.hgetall(f"gw:usage:{day.isoformat()}")
            by_group: dict[str, dict[str, Any]] = {}
            for name, value in counters.items():
                group, _, counter = name.rpartition("\x00")
                key_id, user, model = orjson.loads(group)
                if counter not in _COUNTERS or not where.matches(key_id, user, model):
                    continue
                row = by_group.setdefault(group, {
                    "date": day.isoformat(), "key_id": key_id, "user": user, "model": model,
                    "requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                    "cost_nano": 0})
                row[_COUNTERS[counter]] += int(value)
            rows += sorted(by_group.values(),
                           key=lambda r: (r["key_id"] or "", r["user"] or "", r["model"]))
        for row in rows:
            row["total_tokens"] = row["prompt_tokens"] + row["completion_tokens"]
            row["cost_usd"] = row.pop("cost_nano") / NANO
        return rows
