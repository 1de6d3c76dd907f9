"""``gateway keys create|list|revoke``: the /v1/keys API, from the command line.

It talks to a running gateway (``--url``, default ``$GATEWAY_URL`` or
``http://127.0.0.1:8000``) with the master key (``$GATEWAY_MASTER_KEY``), so it works the
same whether the keys live in Redis or in the server's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="manage virtual keys on a running gateway")
    keys.add_argument("--url", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000"),
                      help="the running gateway's base URL (default: %(default)s; "
                           "$GATEWAY_URL sets it)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; prints it once")
    create.add_argument("--name")
    create.add_argument("--models", help="comma-separated model names (default: all)")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument("--expires-at", type=int, help="unix seconds")
    create.add_argument("--rpd", type=int, help="requests per UTC day")
    create.add_argument("--max-parallel", type=int, help="requests in flight at most")
    create.add_argument("--max-budget-usd", type=float, help="spend cap in USD per period")
    create.add_argument("--budget-period", choices=["day", "month", "total"])
    create.add_argument("--guardrails", help="a JSON list, as in models.yaml")
    actions.add_parser("list", help="list keys (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    keys.set_defaults(func=run)


def _request(args: argparse.Namespace, method: str, path: str,
             body: dict[str, Any] | None = None) -> Any:
    master = os.environ.get("GATEWAY_MASTER_KEY")
    if not master:
        raise SystemExit("gateway: set GATEWAY_MASTER_KEY to manage keys")
    try:
        response = httpx.request(method, f"{args.url.rstrip('/')}{path}", json=body,
                                 headers={"Authorization": f"Bearer {master}"}, timeout=30)
    except httpx.HTTPError as exc:
        raise SystemExit(f"gateway: cannot reach {args.url}: {exc}") from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise SystemExit(f"gateway: {response.status_code}: {message}")
    return response.json()


def run(args: argparse.Namespace) -> int:
    if args.action == "create":
        body: dict[str, Any] = {"name": args.name, "rpm": args.rpm, "tpm": args.tpm,
                                "expires_at": args.expires_at, "rpd": args.rpd,
                                "max_parallel": args.max_parallel,
                                "max_budget_usd": args.max_budget_usd,
                                "budget_period": args.budget_period}
        if args.guardrails:
            try:
                body["guardrails"] = json.loads(args.guardrails)
            except ValueError as exc:
                raise SystemExit(f"gateway: --guardrails is not JSON: {exc}") from None
        if args.models:
            body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
        made = _request(args, "POST", "/v1/keys", {k: v for k, v in body.items()
                                                   if v is not None})
        print(json.dumps(made, indent=2))
    elif args.action == "list":
        for key in _request(args, "GET", "/v1/keys")["data"]:
            print(json.dumps(key))
    else:
        _request(args, "DELETE", f"/v1/keys/{args.id}")
        print(f"revoked {args.id}")
    sys.stdout.flush()
    return 0
