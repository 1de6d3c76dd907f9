"""Every Prometheus metric, defined once, in a registry of the app's own.

With several workers (``gateway serve --workers N``) prometheus-client's multiprocess mode is
used: the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, each worker writes
its values there, and ``/metrics`` on any worker sums them all.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they only add noise to every scrape

_DURATION_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30)


class InFlight:
    """A count of requests in flight, read by ``gauge`` when it is scraped (the event loop
    is the only writer: no lock)."""

    __slots__ = ("value",)

    def __init__(self, gauge: Gauge) -> None:
        self.value = 0
        gauge.set_function(lambda: self.value)

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("gateway_requests_total", "HTTP requests answered.",
                                ["model", "endpoint", "status"], registry=r)
        self.duration = Histogram("gateway_request_duration_seconds",
                                  "Time from request to the end of the response.",
                                  ["model", "endpoint"], buckets=_DURATION_BUCKETS, registry=r)
        self.ttft = Histogram("gateway_time_to_first_token_seconds",
                              "Time from request to the first streamed chunk.",
                              ["model"], buckets=_TTFT_BUCKETS, registry=r)
        self.tokens = Counter("gateway_tokens_total", "Tokens processed.", ["model", "type"],
                              registry=r)
        self.cache_requests = Counter("gateway_cache_requests_total", "Response cache lookups.",
                                      ["result"], registry=r)
        self.rate_limited = Counter("gateway_rate_limited_total", "Requests refused by a limit.",
                                    ["scope"], registry=r)
        self.upstream_errors = Counter("gateway_upstream_errors_total",
                                       "Failed calls to a backend.",
                                       ["model", "provider", "reason"], registry=r)
        self.cost = Counter("gateway_cost_usd_total", "Spend at the deployments' prices (USD).",
                            ["model"], registry=r)
        in_flight = Gauge("gateway_in_flight_requests", "Requests being answered now.",
                          registry=r, multiprocess_mode="livesum")
        # (one process: a plain count that the gauge reads when scraped, not two locked
        # updates of it per request; several: the gauge's own shared value)
        self.in_flight: Gauge | InFlight = in_flight if self.multiprocess else InFlight(in_flight)
        self.jobs = Counter("gateway_jobs_total", "Jobs ended, by tool and final status.",
                            ["tool", "status"], registry=r)
        self.job_duration = Histogram("gateway_job_duration_seconds",
                                      "Time a job ran (from its start to its end).", ["tool"],
                                      buckets=(*_DURATION_BUCKETS, 600, 1800, 3600), registry=r)
        self.jobs_queued = Gauge("gateway_jobs_queued", "Jobs waiting for a worker.",
                                 registry=r, multiprocess_mode="livemax")

        self._answered: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._tokens: dict[str, tuple[Counter, Counter]] = {}
        self._ttft: dict[str, Histogram] = {}

    def answered(self, model: str, endpoint: str, status: str, seconds: float) -> None:
        """One request answered: counted and timed (label children cached: hot path)."""
        key = (model, endpoint, status)
        children = self._answered.get(key)
        if children is None:
            children = self._answered[key] = (self.requests.labels(model, endpoint, status),
                                              self.duration.labels(model, endpoint))
        children[0].inc()
        children[1].observe(seconds)

    def first_token(self, model: str, seconds: float) -> None:
        """A stream's time to first token (label child cached: hot path)."""
        child = self._ttft.get(model)
        if child is None:
            child = self._ttft[model] = self.ttft.labels(model)
        child.observe(seconds)

    def count_tokens(self, model: str, prompt: int, completion: int) -> None:
        children = self._tokens.get(model)
        if children is None:
            children = self._tokens[model] = (self.tokens.labels(model, "prompt"),
                                              self.tokens.labels(model, "completion"))
        if prompt:
            children[0].inc(prompt)
        if completion:
            children[1].inc(completion)

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
