"""The emulator's workflow templates: their attribute schemas, launch validation, and how a completed
workflow's attributes become typed record properties (the emulator's own code, not the connector's)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

#: Ironclad workflow attribute types -> record property types
RECORD_TYPES = {"string": "string", "email": "email", "date": "date", "number": "number",
                "boolean": "boolean", "monetaryAmount": "monetary_amount"}

_TERMS: dict[str, str] = {
    "effectiveDate": "date",
    "expirationDate": "date",
    "contractValue": "monetaryAmount",
    "billingModel": "string",
    "paymentTermsDays": "number",
    "fixedFee": "monetaryAmount",
    "budgetHours": "string",
    "milestones": "string",
    "rateCard": "string",
    "recurringCharges": "string",
    "billingTriggers": "string",
}

_DISPLAY = {"counterpartyName": "Counterparty Name", "contractTitle": "Contract Title", "revopsKey": "RevOps Key",
            "revopsDealId": "CRM Deal ID", "revopsLegalEntity": "Legal Entity",
            "counterpartySignerName": "Counterparty Signer Name",
            "counterpartySignerEmail": "Counterparty Signer Email", "effectiveDate": "Effective Date",
            "expirationDate": "Expiration Date", "contractValue": "Contract Value", "billingModel": "Billing Model",
            "paymentTermsDays": "Payment Terms (days)", "fixedFee": "Fixed Fee", "budgetHours": "Budget Hours",
            "milestones": "Milestones", "rateCard": "Rate Card", "recurringCharges": "Recurring Charges",
            "billingTriggers": "Billing Triggers", "amendmentNumber": "Amendment Number",
            "parentContract": "Parent Contract"}

AMENDMENT_TEMPLATE_ID = "tmpl-contract-amendment"


class Template:
    """One workflow template: attribute types, required attributes, record type."""

    def __init__(self, template_id: str, name: str, record_type: str, attributes: dict[str, str],
                 required: tuple[str, ...]) -> None:
        self.id = template_id
        self.name = name
        self.record_type = record_type
        self.attributes = attributes
        self.required = required

    def schema(self) -> dict[str, Any]:
        """The ``schema`` of a retrieved workflow: one descriptor per attribute."""
        return {key: {"type": kind, "displayName": _DISPLAY.get(key, key), "propertyKey": key, "readOnly": False}
                for key, kind in self.attributes.items()}

    def flat_schema(self) -> dict[str, str]:
        """The launch response's ``schema``: the spec types it as AttributesModel (``counterpartyName`` a
        string), so attribute -> type name."""
        return dict(self.attributes)


def default_templates(order_form_id: str) -> dict[str, Template]:
    order_form = Template(
        order_form_id, "MSA Order Form", "orderForm",
        {"counterpartyName": "string", "contractTitle": "string", "revopsKey": "string", "revopsDealId": "string",
         "revopsLegalEntity": "string", "counterpartySignerName": "string", "counterpartySignerEmail": "email",
         **_TERMS},
        ("counterpartyName", "effectiveDate", "contractValue", "billingModel"),
    )
    amendment = Template(
        AMENDMENT_TEMPLATE_ID, "Contract Amendment", "amendment",
        {"counterpartyName": "string", "contractTitle": "string", "parentContract": "string",
         "amendmentNumber": "number", **_TERMS},
        ("counterpartyName", "parentContract", "amendmentNumber"),
    )
    return {order_form.id: order_form, amendment.id: amendment}


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_attribute(kind: str, value: Any) -> str | None:
    """Why ``value`` is not a valid ``kind`` attribute, or ``None``."""
    if kind == "string":
        return None if isinstance(value, str) else "must be a string"
    if kind == "email":
        return None if isinstance(value, str) and _EMAIL.match(value) else "must be a valid email address"
    if kind == "number":
        return None if _is_number(value) else "must be a number"
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be a boolean"
    if kind == "date":
        if isinstance(value, str) and parse_date(value) is not None:
            return None
        return "must be an ISO 8601 date"
    if kind == "monetaryAmount":
        if (isinstance(value, dict) and isinstance(value.get("currency"), str) and len(value["currency"]) == 3
                and _is_number(value.get("amount"))):
            return None
        return "must be a monetary amount with a 3-letter currency and a numeric amount"
    return f"has unsupported type {kind}"


def parse_date(value: str) -> date | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None


def normalise_date(value: str) -> str:
    day = parse_date(value)
    return f"{day.isoformat()}T00:00:00Z" if day else value


def validate_launch(template: Template, attributes: dict[str, Any]) -> tuple[str, str, str] | None:
    """``(code, message, param)`` of the first problem with the attributes, Ironclad style, or ``None``."""
    for key in template.required:
        if attributes.get(key) in (None, ""):
            return "MISSING_PARAM", f"missing required attribute {key}", key
    for key, value in attributes.items():
        kind = template.attributes.get(key)
        if kind is None:
            return "INVALID_PARAM", f"unknown attribute {key} for template {template.id}", key
        problem = check_attribute(kind, value)
        if problem:
            return "INVALID_PARAM", f"attribute {key} {problem}", key
    return None


def to_properties(template: Template, attributes: dict[str, Any]) -> dict[str, Any]:
    """Workflow attribute values -> typed record properties."""
    properties: dict[str, Any] = {}
    for key, value in attributes.items():
        kind = template.attributes.get(key, "string")
        if value is None:
            continue
        if kind == "date":
            value = normalise_date(value)
        properties[key] = {"type": RECORD_TYPES.get(kind, "string"), "value": value}
    return properties
