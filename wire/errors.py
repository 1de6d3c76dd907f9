"""One error hierarchy, rendered in OpenAI's shape by one function.

Every error a client can see is a ``GatewayError``: it carries the HTTP status, the OpenAI
``type``, a ``code`` and the offending ``param``. Upstream failures are classified by HTTP
status (``from_upstream_status``), never by message text. ``is_client_error`` tells a client's
bad request that the gateway or a provider refused itself, before any upstream call, from a
deployment's failure.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = "internal_error"
    # True on an error an upstream answered with (``from_upstream_status``), False on one the
    # gateway or a provider raised itself.
    from_upstream: bool = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def is_client_error(self) -> bool:
        """A 4xx (not 429) raised here rather than answered by an upstream: the client's own
        bad request (``n: 2`` on a local model, a prompt over its context window), which says
        nothing about a deployment's health."""
        return not self.from_upstream and 400 <= self.status < 500 and self.status != 429

    def body(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body())


class InvalidRequest(GatewayError):
    status, type, code = 400, "invalid_request_error", "invalid_value"


class InvalidJSON(InvalidRequest):
    code = "invalid_json"


class ContextLengthExceeded(InvalidRequest):
    code = "context_length_exceeded"


class ContentPolicyViolation(InvalidRequest):
    code = "content_policy_violation"


class AuthenticationError(GatewayError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class PermissionDenied(GatewayError):
    status, type, code = 403, "permission_error", "model_not_allowed"


class NotFound(GatewayError):
    status, type, code = 404, "invalid_request_error", "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model '{model}' does not exist or you do not have access to it.",
                         param="model")


class MethodNotAllowed(GatewayError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"


class AlreadyExists(GatewayError):
    status, type, code = 409, "invalid_request_error", "already_exists"


class RequestTooLarge(GatewayError):
    status, type, code = 413, "invalid_request_error", "request_too_large"


class UnsupportedMediaType(GatewayError):
    status, type, code = 415, "invalid_request_error", "unsupported_media_type"


class RateLimited(GatewayError):
    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int = 1,
                 headers: Mapping[str, str] | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message, headers={**(headers or {}), "retry-after": str(retry_after)})
        self.retry_after = retry_after
        # The upstream's own wait, unrounded, when it sent one (the retries honour it).
        self.retry_after_s = retry_after_s


class InsufficientQuota(GatewayError):
    """A key over its budget (OpenAI's code for an exhausted quota)."""

    status, type, code = 429, "insufficient_quota", "insufficient_quota"


class UpstreamError(GatewayError):
    status, type, code = 502, "api_error", "upstream_error"


class UpstreamUnavailable(GatewayError):
    status, type, code = 503, "api_error", "upstream_unavailable"


class UpstreamTimeout(GatewayError):
    status, type, code = 504, "api_error", "upstream_timeout"


class InternalError(GatewayError):
    status, type, code = 500, "api_error", "internal_error"


_PASSED_400_CODES = frozenset({"invalid_value", "context_length_exceeded", "invalid_json"})


def from_upstream_status(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    retry_after: str | None = None,
    retry_after_ms: str | None = None,
) -> GatewayError:
    """Map an upstream's HTTP error status to the error the client sees.

    The upstream's own message is kept; its credentials problems (401/403) are the gateway
    operator's, not the caller's, so they surface as 502 rather than as an invalid client key.
    """
    error = _from_status(status, message, param, code, retry_after, retry_after_ms)
    error.from_upstream = True
    return error


def _from_status(status: int, message: str, param: str | None, code: str | None,
                 retry_after: str | None, retry_after_ms: str | None) -> GatewayError:
    if status == 429:
        wait = retry_after_s(retry_after, retry_after_ms)
        whole = 1 if wait is None else max(1, math.ceil(wait))
        return RateLimited(message, retry_after=whole, retry_after_s=wait)
    if status in (401, 403):
        return UpstreamError(f"The upstream rejected the gateway's credentials: {message}")
    if status == 404:
        return NotFound(message, param=param, code="model_not_found")
    if status == 413:
        return RequestTooLarge(message)
    if status == 408:
        return UpstreamTimeout(message)
    if 400 <= status < 500:
        return InvalidRequest(message, param=param,
                              code=code if code in _PASSED_400_CODES else "invalid_value")
    return UpstreamError(f"The upstream answered HTTP {status}: {message}")


def retry_after_s(retry_after: str | None, retry_after_ms: str | None = None) -> float | None:
    """The wait an upstream asked for: OpenAI's ``retry-after-ms``, else ``Retry-After`` as
    seconds or as an HTTP date; None when it gave none that parses."""
    for value, scale in ((retry_after_ms, 0.001), (retry_after, 1.0)):
        if value:
            try:
                seconds = float(value) * scale
            except ValueError:
                continue
            if math.isfinite(seconds):
                return max(0.0, seconds)
    if retry_after:
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return None
