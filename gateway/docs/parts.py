"""The shared pieces of the OpenAPI document: the auth schemes, the headers, and one error
response per status (contract section 5), each with the one error body."""

from __future__ import annotations

from typing import Any

from gateway.http.middleware import _CLIENT_ID

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "`Authorization: Bearer KEY`: the master key "
                                  "(GATEWAY_MASTER_KEY) or a virtual key."},
    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key",
                   "description": "The same key, as Anthropic's SDK sends it."},
}

TAGS = [
    {"name": "OpenAI", "description": "OpenAI's API, as its SDKs speak it."},
    {"name": "Governance", "description": "Virtual keys and usage."},
    {"name": "Prompts", "description": "Prompt templates and server-kept conversations."},
    {"name": "Tools", "description": "OCR, detection, and tools that answer with a job."},
    {"name": "Jobs", "description": "The state, result and events of a tool's job."},
    {"name": "Operations", "description": "Health, metrics and these documents; no auth."},
]

PARAMETERS = {
    "x-request-id": {
        "name": "x-request-id", "in": "header", "required": False,
        "description": "Your id for the request, echoed back when it is 1-128 characters of "
                       f"`{_CLIENT_ID.pattern[:-7]}`; otherwise (or without it) the gateway "
                       "makes one.",
        "schema": {"type": "string"}},
    "x-user-id": {
        "name": "x-user-id", "in": "header", "required": False,
        "description": "The end user, for usage per user (the body's `user` wins).",
        "schema": {"type": "string"}},
}


def _header(description: str, type_: str = "string", required: bool = False
            ) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": type_}}


_LIMITS = {
    "x-ratelimit-limit-requests": ("The key's requests per minute.", "integer"),
    "x-ratelimit-remaining-requests": ("Requests left in the window.", "integer"),
    "x-ratelimit-reset-requests": ("When the window resets (e.g. `1s`, `6m0s`).", "string"),
    "x-ratelimit-limit-tokens": ("The key's tokens per minute.", "integer"),
    "x-ratelimit-remaining-tokens": ("Tokens left in the window.", "integer"),
    "x-ratelimit-reset-tokens": ("When the window resets.", "string"),
}

HEADERS: dict[str, Any] = {
    "x-request-id": _header("The request's id (yours, when you sent a valid one).",
                            required=True),
    "retry-after": _header("Seconds to wait before trying again (rate_limit_exceeded).",
                           "integer"),
    **{name: _header(text, type_) for name, (text, type_) in _LIMITS.items()},
}

LIMIT_HEADERS = {name: {"$ref": f"#/components/headers/{name}"} for name in _LIMITS}

# status -> (component name, the contract's types and codes)
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "invalid_request_error: invalid_json, invalid_value, "
                        "context_length_exceeded, content_policy_violation; `param` names "
                        "the field."),
    401: ("Unauthorized", "authentication_error: invalid_api_key."),
    403: ("Forbidden", "permission_error: model_not_allowed, admin_only."),
    404: ("NotFound", "invalid_request_error: model_not_found, job_not_found, not_found."),
    409: ("Conflict", "invalid_request_error: already_exists."),
    413: ("RequestTooLarge", "invalid_request_error: request_too_large (server.max_body_mb)."),
    415: ("UnsupportedMediaType", "invalid_request_error: unsupported_media_type (a "
                                  "Content-Encoding other than gzip or deflate)."),
    429: ("TooManyRequests", "rate_limit_error: rate_limit_exceeded (with Retry-After); "
                             "insufficient_quota: insufficient_quota (a key over its budget)."),
    500: ("InternalError", "api_error: internal_error (never a stack trace)."),
    502: ("BadGateway", "api_error: upstream_error (the upstream answered 5xx or garbage)."),
    503: ("ServiceUnavailable", "api_error: upstream_unavailable (no deployment answers, "
                                "or the store is down)."),
    504: ("GatewayTimeout", "api_error: upstream_timeout."),
}
ERRORS = {status: name for status, (name, _) in _ERRORS.items()}


def error_responses(error_ref: str) -> dict[str, Any]:
    """One reusable response per error status, each the contract's error body."""
    responses: dict[str, Any] = {}
    for status, (name, codes) in _ERRORS.items():
        headers = {"x-request-id": {"$ref": "#/components/headers/x-request-id"}}
        if status == 429:
            headers["retry-after"] = {"$ref": "#/components/headers/retry-after"}
        responses[name] = {"description": f"{status}: {codes}", "headers": headers,
                           "content": {"application/json": {"schema": {"$ref": error_ref}}}}
    return responses
