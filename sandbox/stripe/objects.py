"""Stripe object shapes and the small rules the emulator shares (periods, lists, errors).

Objects carry every field the 2023-08-16 spec marks required (fixtures3.json was the guide);
optional fields are present with Stripe's defaults so clients see what the real API sends.
"""

from __future__ import annotations

import builtins
import calendar
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse

API_VERSION = "2023-08-16"
DOC_BASE = "https://stripe.com/docs/error-codes"


def now() -> int:
    return int(time.time())


# -- errors --------------------------------------------------------------------------------------
class StripeError(Exception):
    """An error answered in Stripe's shape: ``{"error": {"type", "message", "code", "param"}}``."""

    def __init__(self, status: int, message: str, *, type_: str | None = None, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_ or ("api_error" if status >= 500 else "invalid_request_error")
        self.code = code
        self.param = param
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, type_=self.type, code=self.code, param=self.param,
                              headers=self.headers)


def error_response(status: int, message: str, *, type_: str | None = None, code: str | None = None,
                   param: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message,
                             "type": type_ or ("api_error" if status >= 500 else "invalid_request_error")}
    if code:
        error["code"] = code
        error["doc_url"] = f"{DOC_BASE}/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return JSONResponse(status_code=status, content={"error": error}, headers=headers)


def missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    """Stripe's answer to an unknown ID: 404 for the object in the path, 400 for one named in a parameter."""
    return StripeError(404 if param == "id" else 400, f"No such {kind}: '{object_id}'", code="resource_missing",
                       param=param)


def bad(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


# -- params --------------------------------------------------------------------------------------
class Params:
    """Typed access to decoded form/query params; refuses unknown ones as Stripe does."""

    def __init__(self, data: dict[str, Any], allowed: set[str]) -> None:
        self.data = data
        for key in data:
            if key not in allowed and key != "expand":
                raise bad(f"Received unknown parameter: {key}", key, "parameter_unknown")

    def __contains__(self, name: builtins.str) -> bool:
        return name in self.data

    def raw(self, name: builtins.str) -> Any:
        return self.data.get(name)

    def str(self, name: builtins.str, *, required: bool = False, max_length: int = 5000) -> builtins.str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise bad(f"Missing required param: {name}.", name, "parameter_missing")
            return None
        if not isinstance(value, str):
            raise bad(f"Invalid string: {value!r}", name)
        if len(value) > max_length:
            raise bad(f"Invalid string: {value[:20]}...; must be at most {max_length} characters", name)
        return value

    def int(self, name: builtins.str, *, required: bool = False, minimum: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise bad(f"Missing required param: {name}.", name, "parameter_missing")
            return None
        return to_int(value, name, minimum=minimum)

    def bool(self, name: builtins.str) -> bool | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        # Stripe reads booleans case-insensitively: its own Python SDK sends ``True``/``False``
        if not isinstance(value, str) or value.lower() not in ("true", "false"):
            raise bad(f"Invalid boolean: {value}", name)
        return value.lower() == "true"

    def enum(self, name: builtins.str, values: tuple[builtins.str, ...], *,
             default: builtins.str | None = None) -> builtins.str | None:
        value = self.str(name)
        if value is None:
            return default
        if value not in values:
            raise bad(f"Invalid {name}: must be one of {', '.join(values)}", name)
        return value

    def metadata(self, name: builtins.str = "metadata") -> dict[builtins.str, builtins.str] | None:
        value = self.data.get(name)
        if value is None:
            return None
        return check_metadata(value, name)


def to_int(value: Any, param: str, *, minimum: int | None = None) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise bad(f"Invalid integer: {value}", param)
    number = int(value)
    if minimum is not None and number < minimum:
        raise bad(f"This value must be greater than or equal to {minimum}.", param)
    return number


def check_metadata(value: Any, param: str) -> dict[str, str]:
    if value == "":
        return {}
    if not isinstance(value, dict) or any(not isinstance(v, str) for v in value.values()):
        raise bad("Invalid metadata: metadata must be a set of key-value pairs", param)
    if len(value) > 50:
        raise bad("Invalid metadata: metadata can have up to 50 keys", param)
    for key, item in value.items():
        if len(key) > 40:
            raise bad(f"Metadata key {key[:40]}... must be at most 40 characters", f"{param}[{key}]")
        if len(item) > 500:
            raise bad(f"Metadata values can have up to 500 characters, but you passed in a value that is "
                      f"{len(item)} characters.", f"{param}[{key}]")
    return dict(value)


def merge_metadata(current: dict[str, str], update: dict[str, str] | None, raw: Any) -> dict[str, str]:
    """Stripe's update rule: keys merge, an empty value unsets a key, ``metadata=""`` clears all."""
    if update is None:
        return current
    if raw == "":
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def currency(value: str | None, param: str = "currency") -> str:
    if not value or not re.fullmatch(r"[A-Za-z]{3}", value):
        raise bad(f"Invalid currency: {value}. Stripe currently supports these currencies: usd, eur, gbp, ...",
                  param)
    return value.lower()


# -- lists -------------------------------------------------------------------------------------
def created_matches(created: int, spec: Any, param: str = "created") -> bool:
    """``created=123`` or ``created[gt|gte|lt|lte]=123``."""
    if spec is None:
        return True
    if isinstance(spec, str):
        return created == to_int(spec, param)
    if not isinstance(spec, dict):
        raise bad(f"Invalid {param}", param)
    checks = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
              "lte": lambda a, b: a <= b}
    for op, bound in spec.items():
        if op not in checks:
            raise bad(f"Received unknown parameter: {param}[{op}]", f"{param}[{op}]", "parameter_unknown")
        if not checks[op](created, to_int(bound, f"{param}[{op}]")):
            return False
    return True


def page_limit(params: dict[str, Any]) -> int:
    """A list request's ``limit`` (10 by default, 1 to 100), refusing ``starting_after`` with ``ending_before``."""
    limit_raw = params.get("limit")
    limit = 10 if limit_raw in (None, "") else to_int(limit_raw, "limit")
    if not 1 <= limit <= 100:
        raise bad("This value must be greater than or equal to 1 and less than or equal to 100.", "limit")
    if params.get("starting_after") and params.get("ending_before"):
        raise bad("You may only specify one of these parameters: ending_before, starting_after.")
    return limit


def paginate(items: list[dict[str, Any]], params: dict[str, Any], url: str, kind: str) -> dict[str, Any]:
    """A Stripe list page over ``items`` ordered newest first (``limit``/``starting_after``/``ending_before``)."""
    limit = page_limit(params)
    after, before = params.get("starting_after"), params.get("ending_before")
    ids = [item["id"] for item in items]
    if after:
        if after not in ids:
            raise missing(kind, after, "starting_after")
        rest = items[ids.index(after) + 1:]
        page, has_more = rest[:limit], len(rest) > limit
    elif before:
        if before not in ids:
            raise missing(kind, before, "ending_before")
        rest = items[: ids.index(before)]
        page, has_more = rest[-limit:], len(rest) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


#: ID prefix -> stored kind, for ``expand``
EXPANDABLE = {"cus_": "customer", "sub_": "subscription", "in_": "invoice", "prod_": "product", "price_": "price",
              "ii_": "invoiceitem", "cn_": "credit_note"}
MAX_EXPAND_DEPTH = 4


def expand(obj: dict[str, Any], paths: list[str],
           lookup: Callable[[str, str], dict[str, Any] | None]) -> dict[str, Any]:
    """``obj`` with each dotted path of ``expand[]`` replaced by the object its ID names (lists through
    ``data``), as Stripe does; a path that names no expandable ID is refused, as Stripe refuses it."""
    out = json.loads(json.dumps(obj))
    for path in paths:
        parts = path.split(".")
        if len([p for p in parts if p != "data"]) > MAX_EXPAND_DEPTH:
            raise bad(f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. Property: {path}",
                      "expand")
        _expand(out, parts, path, lookup)
    return out


def _expand(obj: Any, parts: list[str], path: str, lookup: Callable[[str, str], dict[str, Any] | None]) -> None:
    head, rest = parts[0], parts[1:]
    if head == "data" and isinstance(obj, dict) and obj.get("object") in ("list", "search_result"):
        for item in obj.get("data") or []:
            _expand(item, rest, path, lookup)
        return
    if not isinstance(obj, dict) or head not in obj:
        raise bad(f"This property cannot be expanded ({path}).", "expand")
    value = obj[head]
    if isinstance(value, str):
        kind = next((k for prefix, k in EXPANDABLE.items() if value.startswith(prefix)), None)
        found = lookup(kind, value) if kind else None
        if found is None:
            raise bad(f"This property cannot be expanded ({path}).", "expand")
        obj[head] = value = public(json.loads(json.dumps(found)))
    if rest and value is not None:
        _expand(value, rest, path, lookup)


#: lines Stripe embeds in an invoice; the rest are read from ``GET /v1/invoices/{id}/lines``
EMBEDDED_LINES = 10


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as Stripe shows it: an invoice embeds its first ``EMBEDDED_LINES`` lines with ``has_more``.

    The emulator keeps every line in ``lines.data`` internally; only what leaves it is cut.
    """
    if obj.get("object") != "invoice" or not isinstance(obj.get("lines"), dict):
        return obj
    lines = obj["lines"]["data"]
    if len(lines) <= EMBEDDED_LINES and not obj["lines"].get("has_more"):
        return obj
    shown = dict(obj)
    shown["lines"] = {**obj["lines"], "data": lines[:EMBEDDED_LINES], "has_more": len(lines) > EMBEDDED_LINES}
    return shown


def list_object(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "url": url}


# -- periods -------------------------------------------------------------------------------------
def add_interval(ts: int, interval: str, count: int) -> int:
    """``ts`` moved on by ``count`` intervals, keeping the day of month where it exists (as Stripe)."""
    if interval == "day":
        return ts + 86400 * count
    if interval == "week":
        return ts + 7 * 86400 * count
    moment = datetime.fromtimestamp(ts, tz=UTC)
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


# -- object builders ---------------------------------------------------------------------------
def customer_object(cid: str, p: Params, prefix: str) -> dict[str, Any]:
    return {
        "id": cid, "object": "customer", "address": address(p.raw("address")), "balance": p.int("balance") or 0,
        "created": now(), "currency": None, "default_source": None, "delinquent": False,
        "description": p.str("description"), "discount": None, "email": p.str("email", max_length=512),
        "invoice_prefix": p.str("invoice_prefix") or prefix,
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                             "rendering_options": None},
        "livemode": False, "metadata": p.metadata() or {}, "name": p.str("name", max_length=256),
        "next_invoice_sequence": 1, "phone": p.str("phone", max_length=20),
        "preferred_locales": p.raw("preferred_locales") or [], "shipping": None,
        "tax_exempt": p.enum("tax_exempt", ("none", "exempt", "reverse"), default="none"), "test_clock": None,
    }


ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


def address(value: Any) -> dict[str, Any] | None:
    if value in (None, ""):
        return None
    if not isinstance(value, dict):
        raise bad("Invalid address: must be a hash", "address")
    for key in value:
        if key not in ADDRESS_FIELDS:
            raise bad(f"Received unknown parameter: address[{key}]", f"address[{key}]", "parameter_unknown")
    return {key: value.get(key) for key in ADDRESS_FIELDS}


def product_object(pid: str, p: Params) -> dict[str, Any]:
    ts = now()
    return {
        "id": pid, "object": "product", "active": p.bool("active") is not False, "created": ts,
        "default_price": None, "description": p.str("description"), "features": [], "images": [],
        "livemode": False, "metadata": p.metadata() or {}, "name": p.str("name", required=True),
        "package_dimensions": None, "shippable": None, "statement_descriptor": None, "tax_code": None,
        "unit_label": p.str("unit_label"), "updated": ts, "url": None,
    }


def price_object(pid: str, *, product: str, currency_code: str, unit_amount: int,
                 recurring: dict[str, Any] | None, metadata: dict[str, str], nickname: str | None = None,
                 active: bool = True, lookup_key: str | None = None) -> dict[str, Any]:
    return {
        "id": pid, "object": "price", "active": active, "billing_scheme": "per_unit", "created": now(),
        "currency": currency_code, "custom_unit_amount": None, "livemode": False, "lookup_key": lookup_key,
        "metadata": metadata, "nickname": nickname, "product": product,
        "recurring": None if recurring is None else {
            "aggregate_usage": None, "interval": recurring["interval"],
            "interval_count": recurring["interval_count"], "usage_type": "licensed"},
        "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
        "type": "recurring" if recurring else "one_time", "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def invoice_object(iid: str, customer: dict[str, Any], *, currency_code: str, collection_method: str,
                   due_date: int | None, auto_advance: bool, metadata: dict[str, str],
                   description: str | None, billing_reason: str, subscription: dict[str, Any] | None = None,
                   period: tuple[int, int] | None = None) -> dict[str, Any]:
    ts = now()
    start, end = period or (ts, ts)
    return {
        "id": iid, "object": "invoice", "account_country": "US", "account_name": "RevOps Sandbox",
        "account_tax_ids": None, "amount_due": 0, "amount_paid": 0, "amount_remaining": 0,
        "amount_shipping": 0, "application": None, "application_fee_amount": None, "attempt_count": 0,
        "attempted": False, "auto_advance": auto_advance, "automatic_tax": {"enabled": False, "status": None},
        "billing_reason": billing_reason, "charge": None, "collection_method": collection_method,
        "created": ts, "currency": currency_code, "custom_fields": None, "customer": customer["id"],
        "customer_address": customer.get("address"), "customer_email": customer.get("email"),
        "customer_name": customer.get("name"), "customer_phone": customer.get("phone"),
        "customer_shipping": None, "customer_tax_exempt": customer.get("tax_exempt", "none"),
        "customer_tax_ids": [], "default_payment_method": None, "default_source": None,
        "default_tax_rates": [], "description": description, "discount": None, "discounts": [],
        "due_date": due_date if collection_method == "send_invoice" else None, "effective_at": None,
        "ending_balance": None, "footer": None, "from_invoice": None, "hosted_invoice_url": None,
        "invoice_pdf": None, "last_finalization_error": None, "latest_revision": None,
        "lines": list_object([], f"/v1/invoices/{iid}/lines"), "livemode": False, "metadata": metadata,
        "next_payment_attempt": None, "number": None, "on_behalf_of": None, "paid": False,
        "paid_out_of_band": False, "payment_intent": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None,
                             "payment_method_types": None},
        "period_end": end, "period_start": start, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "quote": None, "receipt_number": None,
        "rendering_options": None, "shipping_cost": None, "shipping_details": None, "starting_balance": 0,
        "statement_descriptor": None, "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                               "voided_at": None},
        "subscription": subscription["id"] if subscription else None,
        "subscription_details": {"metadata": subscription["metadata"] if subscription else None},
        "subtotal": 0, "subtotal_excluding_tax": 0, "tax": None, "test_clock": None, "total": 0,
        "total_discount_amounts": [], "total_excluding_tax": 0, "total_tax_amounts": [],
        "transfer_data": None, "webhooks_delivered_at": None,
    }


def recalculate(invoice: dict[str, Any]) -> None:
    """Totals from lines; pre-payment credit notes reduce what is due (Stripe's rule)."""
    subtotal = sum(line["amount"] for line in invoice["lines"]["data"])
    invoice["subtotal"] = invoice["subtotal_excluding_tax"] = subtotal
    invoice["total"] = invoice["total_excluding_tax"] = subtotal
    invoice["amount_due"] = max(0, subtotal - invoice["pre_payment_credit_notes_amount"])
    invoice["amount_remaining"] = max(0, invoice["amount_due"] - invoice["amount_paid"])


def line_from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "il_" + item["id"].removeprefix("ii_"), "object": "line_item", "amount": item["amount"],
        "amount_excluding_tax": item["amount"], "currency": item["currency"],
        "description": item["description"], "discount_amounts": [], "discountable": item["discountable"],
        "discounts": [], "invoice_item": item["id"], "livemode": False, "metadata": item["metadata"],
        "period": item["period"], "price": item["price"], "proration": False,
        "proration_details": {"credited_items": None}, "quantity": item["quantity"],
        "subscription": None, "tax_amounts": [], "tax_rates": [], "type": "invoiceitem",
        "unit_amount_excluding_tax": item["unit_amount_decimal"],
    }


def line_from_subscription_item(line_id: str, sub: dict[str, Any], item: dict[str, Any],
                                product_name: str, period: tuple[int, int]) -> dict[str, Any]:
    price = item["price"]
    amount = price["unit_amount"] * item["quantity"]
    return {
        "id": line_id, "object": "line_item", "amount": amount, "amount_excluding_tax": amount,
        "currency": price["currency"], "description": f"{item['quantity']} × {product_name}",
        "discount_amounts": [], "discountable": True, "discounts": [], "livemode": False,
        "metadata": item["metadata"], "period": {"start": period[0], "end": period[1]}, "price": price,
        "proration": False, "proration_details": {"credited_items": None}, "quantity": item["quantity"],
        "subscription": sub["id"], "subscription_item": item["id"], "tax_amounts": [], "tax_rates": [],
        "type": "subscription", "unit_amount_excluding_tax": str(price["unit_amount"]),
    }
