"""Salesforce's error body into the connector error tree (:mod:`connectors.errors`).

Salesforce answers a refused REST call with a JSON array of ``{"errorCode", "message", "fields"}``; its code, not
the HTTP status, says what happened: ``REQUEST_LIMIT_EXCEEDED`` comes as a 403 and ``UNABLE_TO_LOCK_ROW`` as a 400,
yet both pass if tried again later.
"""

from __future__ import annotations

from typing import Any

import httpx

from connectors.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    NotFound,
    RateLimited,
    Rejected,
    Unavailable,
)

VENDOR = "salesforce"

#: errorCode -> what it means for a retry
RETRYABLE = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT", "REQUEST_RUNNING_TOO_LONG"})
RATE_LIMITS = frozenset({"REQUEST_LIMIT_EXCEEDED", "TXN_SECURITY_METERING_ERROR", "API_CURRENTLY_DISABLED_LIMIT"})
NOT_FOUND = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"})
AUTH = frozenset({"INVALID_SESSION_ID", "INVALID_AUTH_HEADER", "API_DISABLED_FOR_ORG", "INSUFFICIENT_ACCESS",
                  "invalid_client", "invalid_grant", "unsupported_grant_type", "invalid_client_id"})
CONFLICTS = frozenset({"DUPLICATE_VALUE", "DUPLICATES_DETECTED", "DUPLICATE_EXTERNAL_ID"})
#: a daily allowance exhausted frees up over the next hour; a lock in seconds
LIMIT_WAIT_SECONDS = 60.0
#: too many long-running requests at once (``ConcurrentPerOrgLongTxn``): free as soon as one of them ends
CONCURRENT_WAIT_SECONDS = 2.0


def errors_of(body: Any) -> list[dict[str, Any]]:
    """The error objects of a Salesforce error body (an array, or one object, or OAuth's ``error`` form)."""
    if isinstance(body, dict):
        if "error" in body:  # the OAuth endpoints' RFC 6749 shape
            return [{"errorCode": str(body.get("error")), "message": str(body.get("error_description") or "")}]
        body = [body]
    if not isinstance(body, list):
        return []
    return [e for e in body if isinstance(e, dict)]


def first_code(body: Any) -> str:
    errors = errors_of(body)
    return str(errors[0].get("errorCode") or "") if errors else ""


def describe(errors: list[dict[str, Any]]) -> str:
    """``CODE: message [fields]; ...`` (no values: messages name fields, never their data)."""
    parts = []
    for error in errors[:5]:
        fields = error.get("fields") or []
        where = f" [{', '.join(map(str, fields))}]" if fields else ""
        parts.append(f"{error.get('errorCode') or error.get('statusCode') or 'ERROR'}: "
                     f"{str(error.get('message') or '')[:300]}{where}")
    return "; ".join(parts)


def error_message(response: httpx.Response) -> str:
    """Salesforce's explanation of a refused response (``send``'s ``error_message``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return describe(errors_of(body)) or response.text[:300]


def error_for(code: str, message: str, *, status: int | None, retry_after: float | None = None
              ) -> ConnectorError:
    """The connector error of one Salesforce ``errorCode`` (the status decides only when the code does not)."""
    if code in RATE_LIMITS:
        wait = CONCURRENT_WAIT_SECONDS if "ConcurrentPerOrg" in message else LIMIT_WAIT_SECONDS
        return RateLimited(message, retry_after=retry_after or wait, vendor=VENDOR, status=status)
    if code in RETRYABLE:
        return Unavailable(message, vendor=VENDOR, status=status)
    if code in NOT_FOUND:
        return NotFound(message, vendor=VENDOR, status=status)
    if code in AUTH:
        return AuthFailed(message, vendor=VENDOR, status=status)
    if code in CONFLICTS:
        return Conflict(message, vendor=VENDOR, status=status)
    if status is not None and (status >= 500 or status == 429):
        return Unavailable(message, vendor=VENDOR, status=status) if status != 429 else RateLimited(
            message, retry_after=retry_after, vendor=VENDOR, status=status)
    if status == 404:
        return NotFound(message, vendor=VENDOR, status=status)
    if status == 401:
        return AuthFailed(message, vendor=VENDOR, status=status)
    # INVALID_FIELD, REQUIRED_FIELD_MISSING, MALFORMED_QUERY, FIELD_CUSTOM_VALIDATION_EXCEPTION, STRING_TOO_LONG...
    return Rejected(message, vendor=VENDOR, status=status)


def reclassified(exc: ConnectorError) -> ConnectorError:
    """``send`` classified by status; Salesforce's code (the message's first word) decides instead. An error
    without a response (a timeout, a network failure) has neither: ``send``'s classification stands."""
    if exc.status is None:
        return exc
    code = exc.message.split(":", 1)[0].strip()
    retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
    fixed = error_for(code, exc.message, status=exc.status, retry_after=retry_after)
    return exc if type(fixed) is type(exc) else fixed


__all__ = ["VENDOR", "describe", "error_for", "error_message", "errors_of", "first_code", "reclassified"]
