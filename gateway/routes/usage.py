"""GET /v1/usage: tokens and requests per key, end user, model and day."""

from __future__ import annotations

import datetime as dt

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.access.usage import DEFAULT_DAYS, RETENTION_DAYS, UsageFilter, day_of, parse_day
from gateway.http.routing import Route
from gateway.routes.common import json_response
from gateway.state import app_state
from wire.errors import InvalidRequest, PermissionDenied


async def get_usage(request: Request) -> Response:
    gateway = app_state(request)
    caller = await gateway.auth.authenticate(request.headers)
    query = request.query_params
    key_id = query.get("key_id") or None
    if not caller.is_admin:
        if key_id not in (None, caller.key_id):
            raise PermissionDenied("A virtual key may only see its own usage.",
                                   param="key_id", code="admin_only")
        key_id = caller.key_id
    end = parse_day(query["to"], "to") if query.get("to") else day_of()
    start = (parse_day(query["from"], "from") if query.get("from")
             else end - dt.timedelta(days=DEFAULT_DAYS - 1))
    if start > end:
        raise InvalidRequest("'from' is after 'to'.", param="from")
    if (end - start).days >= RETENTION_DAYS:
        raise InvalidRequest(f"Ask for at most {RETENTION_DAYS} days at a time.", param="from")
    where = UsageFilter(start, end, key_id=key_id, user=query.get("user") or None,
                        model=query.get("model") or None)
    rows = await gateway.usage.query(where)
    totals = {name: sum(row[name] for row in rows) for name in
              ("requests", "prompt_tokens", "completion_tokens", "total_tokens")}
    totals["cost_usd"] = round(sum(row["cost_usd"] for row in rows), 9)
    return json_response(orjson.dumps({"object": "list", "data": rows, "totals": totals,
                                       "from": start.isoformat(), "to": end.isoformat()}))


routes = [Route("/v1/usage", get_usage, methods=["GET"])]
