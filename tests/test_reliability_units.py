"""Backoff, Retry-After, per-request attempts and the circuit breaker, with an injected clock
and injected random numbers: no sleeping."""

from __future__ import annotations

import email.utils
import time

import pytest

from gateway.routing.reliability import (
    Attempts,
    CircuitBreaker,
    Failures,
    backoff_s,
    is_retryable,
    retry_wait_s,
)
from providers.openai.provider import OpenAICompatibleConfig
from wire.errors import (
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    from_upstream_status,
    retry_after_s,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(**keys: object) -> OpenAICompatibleConfig:
    return OpenAICompatibleConfig.model_validate(
        {"name": "m", "provider": "openai-compatible", "api_base": "http://x", **keys})


def test_retryable_by_class_not_message() -> None:
    assert all(is_retryable(e) for e in (
        RateLimited("x"), UpstreamError("x"), UpstreamUnavailable("x"), UpstreamTimeout("x"),
        from_upstream_status(500, "bad request"), from_upstream_status(408, "x")))
    assert not any(is_retryable(e) for e in (
        InvalidRequest("timeout"), from_upstream_status(400, "server error, retry"),
        from_upstream_status(404, "x"), from_upstream_status(413, "x"), RuntimeError("x")))


def test_backoff_is_exponential_capped_and_jittered() -> None:
    top = [backoff_s(n, 0.5, 8.0, rand=lambda: 1.0) for n in range(1, 8)]
    assert top == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff_s(3, 0.5, 8.0, rand=lambda: 0.0) == 0.0
    assert backoff_s(3, 0.5, 8.0, rand=lambda: 0.25) == 0.5  # full jitter: uniform in [0, 2]
    assert backoff_s(10_000, 0.5, 8.0, rand=lambda: 1.0) == 8.0  # no overflow


def test_retry_wait_honours_retry_after_up_to_the_maximum() -> None:
    policy = config(retry_backoff_s=0.5, retry_max_wait_s=10)
    half = lambda: 0.5  # noqa: E731
    assert retry_wait_s(UpstreamError("x"), 2, policy, half) == 0.5
    assert retry_wait_s(RateLimited("x", retry_after_s=3.2), 2, policy, half) == 3.2
    assert retry_wait_s(RateLimited("x", retry_after_s=0.1), 2, policy, half) == 0.5
    assert retry_wait_s(RateLimited("x"), 1, policy, half) == 0.25  # no Retry-After: backoff
    assert retry_wait_s(RateLimited("x", retry_after_s=10.5), 1, policy, half) is None


def test_retry_after_parsing() -> None:
    assert retry_after_s("7") == 7.0 and retry_after_s("0.25") == 0.25
    assert retry_after_s("2", "1500") == 1.5  # OpenAI's retry-after-ms wins
    assert retry_after_s("garbage") is None and retry_after_s(None) is None
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (retry_after_s(soon) or 0) <= 30
    limited = from_upstream_status(429, "slow down", retry_after="1", retry_after_ms="300")
    assert isinstance(limited, RateLimited)
    assert (limited.retry_after, limited.retry_after_s) == (1, 0.3)
    assert limited.headers["retry-after"] == "1"
    bare = from_upstream_status(429, "slow down")
    assert isinstance(bare, RateLimited) and (bare.retry_after, bare.retry_after_s) == (1, None)


def test_attempts_one_deployment_backs_off_then_gives_up() -> None:
    clock, policy = Clock(), config(retries=2, retry_backoff_s=1.0)
    attempts: Attempts[str] = Attempts(clock, rand=lambda: 1.0)
    assert attempts.held_back() == (set(), None) and not attempts.tried
    assert attempts.failed("a", UpstreamError("x"), policy)  # retry 1: after 1 s
    assert attempts.held_back() == ({"a"}, 1.0)
    clock.now += 0.25
    assert attempts.held_back() == ({"a"}, 0.75)
    clock.now += 0.75
    assert attempts.held_back() == (set(), None)
    assert attempts.failed("a", UpstreamError("x"), policy)  # retry 2: after 2 s
    assert attempts.held_back() == ({"a"}, 2.0)
    clock.now += 2.0
    assert not attempts.failed("a", UpstreamError("x"), policy)  # retries spent
    assert attempts.retries == 2


def test_attempts_prefer_an_untried_deployment() -> None:
    clock, policy = Clock(), config(retries=3, retry_backoff_s=5.0)
    attempts: Attempts[str] = Attempts(clock, rand=lambda: 1.0)
    assert attempts.failed("a", UpstreamUnavailable("x"), policy)
    assert attempts.held_back() == ({"a"}, 5.0)  # "b" may go at once


def test_attempts_long_retry_after_is_not_waited() -> None:
    clock, policy = Clock(), config(retries=2, retry_max_wait_s=10)
    attempts: Attempts[str] = Attempts(clock, rand=lambda: 0.0)
    assert attempts.failed("a", RateLimited("x", retry_after_s=60), policy)
    assert attempts.held_back() == ({"a"}, None)  # nothing to wait for
    clock.now += 120
    assert attempts.held_back() == ({"a"}, None)  # given up for this request
    assert not Attempts[str](clock).failed("a", UpstreamError("x"), config(retries=0))


def test_breaker_opens_after_failures_in_a_row() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 30.0, clock)
    for _ in range(2):
        breaker.failure(breaker.admit())
    breaker.success(breaker.admit())  # a success in between starts the count again
    for _ in range(2):
        breaker.failure(breaker.admit())
    assert breaker.state == "closed" and breaker.available()
    breaker.failure(breaker.admit())
    assert breaker.state == "open" and not breaker.available()
    clock.now += 29.9
    assert not breaker.available()


def test_breaker_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 30.0, clock)
    breaker.failure(breaker.admit())
    clock.now += 30
    assert breaker.state == "half_open" and breaker.available()
    assert breaker.admit() is True  # the probe
    assert not breaker.available()  # no second probe while it runs
    breaker.success(True)
    assert breaker.state == "closed" and breaker.available()
    assert breaker.admit() is False  # an ordinary call again


def test_breaker_failed_probe_reopens_for_a_new_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, 10.0, clock)
    breaker.failure(breaker.admit())
    breaker.failure(breaker.admit())
    clock.now += 10
    breaker.failure(breaker.admit())
    assert breaker.state == "open"
    clock.now += 9.9
    assert not breaker.available()
    clock.now += 0.1
    assert breaker.available()


def test_breaker_released_probe_and_stragglers() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10.0, clock)
    straggler = breaker.admit()  # let through while closed, answers after the breaker opened
    breaker.failure(breaker.admit())
    breaker.failure(straggler)  # does not extend the cooldown
    clock.now += 10
    probe = breaker.admit()
    breaker.release(probe)  # the client left: no verdict, the next call probes
    assert breaker.available() and breaker.admit() is True


def test_breaker_off_with_zero_failures() -> None:
    breaker = CircuitBreaker(0, 10.0, Clock())
    for _ in range(50):
        breaker.failure(breaker.admit())
    assert breaker.state == "closed"


def test_config_keys_and_timeouts() -> None:
    c = config(timeout_s=60, connect_timeout_s=2)
    assert (c.retries, c.retry_backoff_s, c.retry_max_wait_s) == (2, 0.5, 10.0)
    assert (c.cooldown_failures, c.cooldown_s) == (3, 30.0)
    whole, stream = c.timeouts(stream=False), c.timeouts(stream=True)
    assert (whole.connect, whole.total, whole.idle) == (2, 60, 60)
    assert (stream.connect, stream.total, stream.idle) == (2, None, 60)
    assert config(stream_idle_timeout_s=5).timeouts(stream=True).idle == 5
    with pytest.raises(ValueError):
        config(cooldown_s=0)


def test_what_the_client_gets_when_everything_failed() -> None:
    nothing: Failures[str] = Failures()
    assert isinstance(nothing.final("m"), UpstreamUnavailable)  # all cooling: nothing called
    failures: Failures[str] = Failures()
    failures.note("a", UpstreamError("a"))
    failures.note("b", UpstreamTimeout("b"))
    assert failures.final("m").message == "b"  # the last error
    failures.note("c", RateLimited("c", retry_after=9))
    failures.note("d", RateLimited("d", retry_after=4))
    failures.note("e", UpstreamError("e"))
    assert failures.final("m").message == "d"  # a 429 (the soonest) tells when to come back
    failures.note("d", UpstreamError("d again"))
    assert failures.final("m").message == "c"  # only a deployment's last answer counts
