"""Xero's wire conventions, written for the emulator (not shared with the connector on purpose):
Decimal-exact JSON, ``/Date(ms+0000)/`` dates, response envelopes and Xero's error shapes."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Response

PROVIDER_NAME = "RevOps Xero Sandbox"

#: keys whose values the emulator keeps as decimal strings and sends as JSON numbers
NUMBER_KEYS = frozenset({
    "Quantity", "UnitAmount", "LineAmount", "TaxAmount", "DiscountRate", "DiscountAmount", "SubTotal", "TotalTax",
    "Total", "TotalDiscount", "AmountDue", "AmountPaid", "AmountCredited", "CurrencyRate", "Amount", "BankAmount",
    "RemainingCredit", "AppliedAmount", "value",
})


def dumps(value: Any) -> str:
    """JSON text where ``Decimal`` becomes a JSON number with its exact digits (never via float)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot encode {value} as JSON")
        return format(value, "f")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot encode {value} as JSON")
        return json.dumps(value)
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every non-integer number as ``Decimal``."""
    return json.loads(text, parse_float=Decimal)


def render(doc: Any) -> Any:
    """A stored document as sent on the wire: internal ``_keys`` dropped, amounts as numbers."""
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for key, value in doc.items():
            if key.startswith("_"):
                continue
            if key in NUMBER_KEYS and isinstance(value, str):
                try:
                    out[key] = Decimal(value)
                    continue
                except InvalidOperation:
                    pass
            out[key] = render(value)
        return out
    if isinstance(doc, list):
        return [render(v) for v in doc]
    return doc


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=dumps(body), status_code=status, media_type="application/json", headers=headers)


def envelope(collection: str, items: list[dict[str, Any]], *, pagination: dict[str, int] | None = None
             ) -> dict[str, Any]:
    """Xero's accounting response envelope around a collection."""
    body: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": PROVIDER_NAME,
                            "DateTimeUTC": ms_date(datetime.now(UTC))}
    if pagination is not None:
        body["pagination"] = pagination
    body[collection] = [render(i) for i in items]
    return body


# -- dates --------------------------------------------------------------------------------------
def ms_date(moment: datetime | date) -> str:
    """``/Date(1518652800000+0000)/``: how Xero's JSON carries dates and timestamps."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def parse_date(value: Any) -> date | None:
    """A request date: ``2024-05-01``, ``2024-05-01T00:00:00`` or ``/Date(ms+0000)/``."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if text.startswith("/Date("):
        millis = int(text[6:].split("+")[0].split("-")[0].rstrip(")/"))
        return datetime.fromtimestamp(millis / 1000, tz=UTC).date()
    return date.fromisoformat(text[:10])


def parse_moment(value: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or offset or naive = UTC) or an HTTP date."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        from email.utils import parsedate_to_datetime

        moment = parsedate_to_datetime(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_utc(moment: datetime) -> str:
    """``2020-02-26T15:00:00Z`` (the Projects API's date format)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- errors -------------------------------------------------------------------------------------
def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    """The platform-level error shape Xero's gateway uses for 401, 403, 429 and 5xx."""
    body: dict[str, Any] = {"Type": None, "Title": title, "Status": status, "Detail": detail,
            "Instance": str(uuid.uuid4()), "Extensions": {}}
    return json_response(body, status, headers)


def unauthorized() -> Response:
    return problem(401, "Unauthorized", "AuthenticationUnsuccessful",
                   headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def forbidden() -> Response:
    return problem(403, "Forbidden", "AuthorizationUnsuccessful")


def validation_exception(elements: list[dict[str, Any]]) -> Response:
    """400 ``ValidationException``: each element is the submitted object with its ``ValidationErrors``."""
    body = {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
            "Elements": [render(e) for e in elements]}
    return json_response(body, 400)


def accounting_error(number: int, kind: str, message: str, status: int = 400) -> Response:
    """Other accounting exceptions (``PostDataInvalidException``, ``QueryParseException``...)."""
    return json_response({"ErrorNumber": number, "Type": kind, "Message": message}, status)


def not_found() -> Response:
    # The accounting API answers an unknown ID with a plain-text 404.
    return Response(content="The resource you're looking for cannot be found", status_code=404,
                    media_type="text/plain")


def projects_error(message: str, model_state: dict[str, list[str]] | None = None, status: int = 400) -> Response:
    """The Projects API's error shape (``Error`` in xero-projects.yaml)."""
    body: dict[str, Any] = {"message": message}
    if model_state is not None:
        body["modelState"] = model_state
    return json_response(body, status)
