"""Retries, backoff and the circuit breaker: pure bookkeeping, no I/O.

The router (gateway/routing/router.py) runs the attempts; this module decides what they may do.

- Which errors are retried: ``RETRYABLE``, by error class (an upstream 429, 5xx or garbage,
  timeout, refused connection), never by message. A 4xx client error is answered at once.
- How long to wait before a deployment is tried again: exponential backoff with full jitter
  (``backoff_s``), at least the upstream's ``Retry-After``; a ``Retry-After`` longer than the
  deployment's ``retry_max_wait_s`` is not waited out (``retry_wait_s`` says None).
- One request's attempts on the deployments of one name (``Attempts``): how many retries are
  left, which deployment is held back by its backoff and until when; and what the client is
  told when every attempt failed (``Failures``).
- A ``CircuitBreaker`` per deployment: after ``cooldown_failures`` failures in a row it opens
  for ``cooldown_s`` (the deployment is skipped), then half-opens: exactly one probe request is
  let through; its success closes the breaker, its failure opens it again. The state lives in
  the process: each replica (and each worker) keeps its own and learns on its own.

Clocks and random numbers are injectable so that all of it is tested without sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable, Set
from typing import Generic, Literal, TypeVar

from providers.base import DeploymentConfig
from wire.errors import (
    GatewayError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

Clock = Callable[[], float]
Random = Callable[[], float]
K = TypeVar("K", bound=Hashable)

RETRYABLE: tuple[type[GatewayError], ...] = (
    RateLimited, UpstreamError, UpstreamUnavailable, UpstreamTimeout)


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, RETRYABLE)


def backoff_s(failures: int, base_s: float, cap_s: float, rand: Random = random.random) -> float:
    """The wait after a deployment's ``failures``-th failure: uniform in
    ``[0, min(cap_s, base_s * 2 ** (failures - 1))]`` ("full jitter")."""
    ceiling = min(cap_s, base_s * 2.0 ** min(failures - 1, 60))
    return ceiling * rand()


def retry_wait_s(error: GatewayError, failures: int, config: DeploymentConfig,
                 rand: Random = random.random) -> float | None:
    """How long before a deployment that just failed with ``error`` may be tried again in
    this request; None when it should not be (its Retry-After is too long to wait out)."""
    wait = backoff_s(failures, config.retry_backoff_s, config.retry_backoff_max_s, rand)
    if isinstance(error, RateLimited) and error.retry_after_s is not None:
        if error.retry_after_s > config.retry_max_wait_s:
            return None
        wait = max(wait, error.retry_after_s)
    return wait


class Attempts(Generic[K]):
    """One request's attempts on the deployments (``K``) of one model name.

    A failed attempt may be retried when the failing deployment's ``retries`` are not yet
    spent on this name. A retry goes to a deployment not tried yet when there is one (it
    needs no wait); a deployment already tried is held back until its backoff has passed.
    """

    __slots__ = ("_clock", "_done", "_failures", "_rand", "_ready_at", "retries")

    def __init__(self, clock: Clock = time.monotonic, rand: Random = random.random) -> None:
        self._clock, self._rand = clock, rand
        self.retries = 0
        self._failures: dict[K, int] = {}
        self._ready_at: dict[K, float] = {}
        self._done: set[K] = set()

    @property
    def tried(self) -> bool:
        return bool(self._failures)

    @property
    def failed_keys(self) -> Set[K]:
        return self._failures.keys()

    def failed(self, key: K, error: GatewayError, config: DeploymentConfig) -> bool:
        """Note a retryable failure of ``key``; True when the name may be tried again."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        wait = retry_wait_s(error, failures, config, self._rand)
        if wait is None:
            self._done.add(key)
            self._ready_at.pop(key, None)
        else:
            self._ready_at[key] = self._clock() + wait
        if self.retries >= config.retries:
            return False
        self.retries += 1
        return True

    def held_back(self) -> tuple[Set[K], float | None]:
        """The deployments that may not be tried now (given up, or still backing off), and
        the seconds until the first of those backing off may be; None when none is."""
        if not self._ready_at:
            return self._done, None
        now = self._clock()
        waiting = {key: at - now for key, at in self._ready_at.items() if at > now}
        return self._done | waiting.keys(), min(waiting.values(), default=None)


class Failures(Generic[K]):
    """What went wrong in one request's attempts (on every name tried), for the answer when
    all of them failed: a 429 when some deployment last answered one (the shortest
    Retry-After), else the last error, else (nothing could be called) 503."""

    __slots__ = ("by_key", "last")

    def __init__(self) -> None:
        self.last: GatewayError | None = None
        self.by_key: dict[K, GatewayError] = {}

    def note(self, key: K, error: GatewayError) -> None:
        self.last = self.by_key[key] = error

    def final(self, model: str) -> GatewayError:
        limited = [e for e in self.by_key.values() if isinstance(e, RateLimited)]
        if limited:
            return min(limited, key=lambda error: error.retry_after)
        return self.last or UpstreamUnavailable(
            f"Every deployment of the model '{model}' is cooling down after failures; "
            "try again later.")


State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed → (``failures`` failures in a row) → open for ``cooldown_s`` → half-open: the
    next ``admit`` is the one probe; its success closes, its failure reopens. ``failures=0``
    turns the breaker off. A call's outcome is reported with ``success``, ``failure`` or
    ``release`` (no verdict: the client left, or it was the client's own error), passing
    back what ``admit`` returned (True for the probe)."""

    __slots__ = ("_clock", "_cooldown_s", "_failures", "_open_until", "_probing", "_threshold")

    def __init__(self, failures: int, cooldown_s: float, clock: Clock = time.monotonic) -> None:
        self._threshold, self._cooldown_s, self._clock = failures, cooldown_s, clock
        self._failures = 0
        self._open_until: float | None = None
        self._probing = False

    @classmethod
    def for_config(cls, config: DeploymentConfig, clock: Clock = time.monotonic
                   ) -> CircuitBreaker:
        return cls(config.cooldown_failures, config.cooldown_s, clock)

    @property
    def state(self) -> State:
        if self._open_until is None:
            return "closed"
        return "half_open" if self._probing or self._clock() >= self._open_until else "open"

    def available(self) -> bool:
        """Whether a call may go to this deployment now (no side effect)."""
        if self._open_until is None:
            return True
        return not self._probing and self._clock() >= self._open_until

    def admit(self) -> bool:
        """Let a call through (``available()`` must be True); True when it is the probe."""
        if self._open_until is None:
            return False
        self._probing = True
        return True

    def success(self, probe: bool) -> None:
        if probe or self._open_until is None:
            self._failures, self._open_until, self._probing = 0, None, False

    def failure(self, probe: bool) -> None:
        if probe:
            self._open()
        elif self._open_until is None and self._threshold:
            self._failures += 1
            if self._failures >= self._threshold:
                self._open()
        # a failure of a call let through before the breaker opened changes nothing

    def release(self, probe: bool) -> None:
        if probe:
            self._probing = False

    def _open(self) -> None:
        self._failures, self._probing = 0, False
        self._open_until = self._clock() + self._cooldown_s
