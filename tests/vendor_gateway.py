"""A gateway config routing to the three fake vendor upstreams, for the end-to-end tests.

For each vendor V (``anthropic``, ``gemini``, ``ollama``): model ``V`` goes upstream as
``echo``; ``V/*`` passes the rest through (``V/tool-call``, ``V/error-429``...).
"""

from __future__ import annotations

from typing import Any

VENDORS = ("anthropic", "gemini", "ollama")
KEYS = {"anthropic": "sk-ant-upstream", "gemini": "gm-upstream", "ollama": None}


def vendor_config(urls: dict[str, str]) -> dict[str, Any]:
    models: list[dict[str, Any]] = []
    for vendor in VENDORS:
        base: dict[str, Any] = {"provider": vendor, "api_base": urls[vendor] + "/",
                                "timeout_s": 10}
        if KEYS[vendor]:
            base["api_key"] = KEYS[vendor]
        models += [{"name": vendor, "model": "echo", **base}, {"name": f"{vendor}/*", **base}]
    return {"models": models}
