"""Prices and periods, on their own."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.access.spend import cost_usd, period_id
from gateway.config import validate
from wire.openai import Usage


def test_cost_with_cached_prompt_tokens() -> None:
    priced = validate({"models": [{
        "name": "m", "provider": "openai-compatible", "api_base": "http://x",
        "input_cost_per_mtok": 2.0, "cached_input_cost_per_mtok": 0.5,
        "output_cost_per_mtok": 8.0}]}).deployments[0]
    # 1000 prompt tokens of which 400 cached, 100 completion tokens
    assert cost_usd(priced, Usage(1000, 100, 400)) == pytest.approx(
        (600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6)
    no_cached_price = priced.model_copy(update={"cached_input_cost_per_mtok": None})
    assert cost_usd(no_cached_price, Usage(1000, 100, 400)) == pytest.approx(
        (1000 * 2.0 + 100 * 8.0) / 1e6)
    assert cost_usd(priced, None) == 0 and cost_usd(None, Usage(5, 5)) == 0


def test_prices_must_not_be_negative() -> None:
    from gateway.config import ConfigError
    with pytest.raises(ConfigError, match=r"models\[0\]\.input_cost_per_mtok"):
        validate({"models": [{"name": "m", "provider": "openai-compatible",
                              "api_base": "http://x", "input_cost_per_mtok": -1}]})


def test_periods() -> None:
    moment = dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.UTC)
    assert period_id("day", moment) == "2026-12-01"
    assert period_id("month", moment) == "2026-12"
    assert period_id("total", moment) == "total"
