"""Model name → deployments: the router (pick, limits per deployment, retry, fallback) and
its reliability parts (backoff, circuit breaker)."""
