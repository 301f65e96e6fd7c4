"""NetSuite's wire conventions, written for the emulator (not shared with the connector on purpose): exact
decimal JSON, the ``o:errorDetails`` error body, and a record seen as SuiteQL columns."""

from __future__ import annotations

import json
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from fastapi import Response

#: the fields the emulator keeps as decimal strings and sends as JSON numbers
NUMBER_KEYS = frozenset({"quantity", "rate", "amount", "subtotal", "taxTotal", "total", "amountPaid",
                         "amountRemaining", "payment", "applied", "unapplied", "jobPrice", "estimatedWork", "hours",
                         "custevent_revops_rate"})
#: the RFC 9110 section of each status (NetSuite's ``type``)
_SECTIONS = {400: "15.5.1", 401: "15.5.2", 403: "15.5.4", 404: "15.5.5", 405: "15.5.6", 409: "15.5.10",
             429: "6.1", 500: "15.6.1", 502: "15.6.3", 503: "15.6.4"}
INVALID_LOGIN = ("Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > "
                 "Users/Roles > User Management > View Login Audit Trail.")


def dumps(value: Any) -> str:
    """JSON text where ``Decimal`` is a JSON number with its exact digits (never via float)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def render(doc: Any) -> Any:
    """A stored record as sent: amounts as numbers, internal ``_keys`` dropped."""
    if isinstance(doc, dict):
        return {k: (Decimal(v) if k in NUMBER_KEYS and isinstance(v, str) else render(v))
                for k, v in doc.items() if not k.startswith("_")}
    if isinstance(doc, list):
        return [render(v) for v in doc]
    return doc


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(render(body)), status_code=status, media_type="application/vnd.oracle.resource+json",
                    headers=headers)


def error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    """NetSuite's error body: ``type``, ``title``, ``status`` and ``o:errorDetails[{detail, o:errorCode}]``."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    section = _SECTIONS.get(status, "15.5.1" if status < 500 else "15.6.1")
    rfc = "rfc6585.html#section-4" if status == 429 else f"rfc9110.html#section-{section}"
    body = {"type": f"https://www.rfc-editor.org/rfc/{rfc}", "title": title, "status": status,
            "o:errorDetails": [{"detail": detail, "o:errorCode": code}]}
    return Response(json.dumps(body), status_code=status, media_type="application/vnd.oracle.resource+json",
                    headers=headers)


def unauthorized(reason: str) -> Response:
    """401 ``INVALID_LOGIN`` (the reason appended so a developer can tell which check failed)."""
    return error(401, "INVALID_LOGIN", f"{INVALID_LOGIN} ({reason})")


def concurrency_exceeded() -> Response:
    return error(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked.")


def not_found(record_type: str, record_id: str) -> Response:
    return error(404, "NONEXISTENT_ID", f"The record instance does not exist. Provide a valid record instance ID. "
                 f"({record_type} {record_id})")


def invalid(detail: str, code: str = "USER_ERROR") -> Response:
    return error(400, code, detail)


def columns(record: dict[str, Any]) -> dict[str, Any]:
    """A record as SuiteQL sees it: field names in lower case, a reference as its ID, booleans ``T``/``F``,
    every value as text; sublists are not columns."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key.startswith("_") or key == "links":
            continue
        if isinstance(value, dict):
            if "id" in value and "items" not in value:
                row[key.lower()] = str(value["id"])
            continue
        if isinstance(value, list):
            continue
        if isinstance(value, bool):
            row[key.lower()] = "T" if value else "F"
        elif value is not None:
            row[key.lower()] = str(value)
    return row


__all__ = ["INVALID_LOGIN", "columns", "concurrency_exceeded", "dumps", "error", "invalid", "json_response",
           "loads", "not_found", "render", "unauthorized"]
