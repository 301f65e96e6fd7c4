"""HubSpot <-> canonical, one function per object and direction.

HubSpot sends every property as a string (or omits it, or sends ``null``). A deal that lacks data
still maps: unparseable values become ``None`` and the workflow's own checks
(``Deal.missing_commercial_fields``) say what is missing; only a broken wire response is an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from canonical import Account, Address, BillingInterval, BillingModel, Contact, Deal, DealLine
from canonical.money import normalise_currency
from canonical.requests import AccountFigures, DealWriteBack, ProvisioningRecord

log = logging.getLogger(__name__)

EXTERNAL_REF_PROPERTY = "revops_external_ref"

# The properties read per object, each with the canonical field it fills and how: the reads ask for exactly
# these, and docs/field-mapping.md is generated from them (connectors/fieldmap.py). "-": read, not mapped.
DEAL_FIELDS: dict[str, tuple[str, str]] = {
    "dealname": ("Deal.name", "text; `HubSpot deal <id>` when empty"),
    "amount": ("Deal.amount", "decimal; None when unparseable"),
    "dealstage": ("Deal.stage", "text"),
    "pipeline": ("-", "read with the deal, not mapped"),
    "deal_currency_code": ("Deal.currency", "ISO 4217, upper-cased"),
    "closedate": ("-", "read with the deal, not mapped"),
    "hs_lastmodifieddate": ("DealStageReached.occurred_at", "datetime; the deal poll's checkpoint"),
    "revops_region": ("Deal.region", "text"),
    "revops_legal_entity": ("Deal.legal_entity", "text (entity code)"),
    "revops_billing_model": ("Deal.billing_model", "enum BillingModel; None when unknown"),
    "revops_start_date": ("Deal.start_date", "date (ISO or epoch ms)"),
    "revops_end_date": ("Deal.end_date", "date; dropped when before the start"),
    "revops_payment_terms_days": ("Deal.payment_terms_days", "non-negative integer"),
    "revops_non_standard_terms": ("Deal.non_standard_terms", "`true` -> True"),
    "hubspot_owner_id": ("Deal.owner_id", "text; the approver who may not decide on this deal"),
}
LINE_ITEM_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("DealLine.name", "text; the product code when empty"),
    "hs_sku": ("DealLine.product_code", "text; else hs_product_id, else `hubspot-line-item-<id>`"),
    "hs_product_id": ("DealLine.product_code", "fallback of hs_sku"),
    "quantity": ("DealLine.quantity", "decimal; 1 when empty"),
    "price": ("DealLine.unit_price", "decimal; 0 when empty"),
    "hs_discount_percentage": ("DealLine.discount_percent", "decimal; 0 when empty"),
    "recurringbillingfrequency": ("DealLine.interval", "monthly/quarterly/annually -> BillingInterval"),
    "revops_billing_model": ("DealLine.billing_model", "enum BillingModel"),
    "revops_legal_entity": ("DealLine.legal_entity", "text (entity code)"),
}
COMPANY_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("Account.name", "text; the domain, else `HubSpot company <id>`, when empty"),
    "domain": ("Account.domain", "text"),
    "country": ("Account.country", "ISO 3166 alpha-2 from a code or a name"),
    "address": ("Account.address.line1", "text"),
    "address2": ("Account.address.line2", "text"),
    "city": ("Account.address.city", "text"),
    "zip": ("Account.address.postal_code", "text"),
    "state": ("Account.address.region", "text"),
    EXTERNAL_REF_PROPERTY: ("Account.crm_id", "upsert key: `domain:<domain>`, else the ERP or billing ID"),
}
CONTACT_FIELDS: dict[str, tuple[str, str]] = {
    "firstname": ("Contact.first_name", "text"),
    "lastname": ("Contact.last_name", "text"),
    "email": ("Contact.email", "text"),
    "phone": ("Contact.phone", "text"),
    "revops_contact_role": ("Contact.role", "lower-cased (billing, signer, ...)"),
}
DEAL_PROPERTIES = list(DEAL_FIELDS)
LINE_ITEM_PROPERTIES = list(LINE_ITEM_FIELDS)
COMPANY_PROPERTIES = list(COMPANY_FIELDS)
CONTACT_PROPERTIES = list(CONTACT_FIELDS)

_INTERVALS = {"monthly": BillingInterval.MONTH, "quarterly": BillingInterval.QUARTER,
              "annually": BillingInterval.YEAR}
_BILLING_MODELS = [m.value for m in BillingModel]


# -- property definitions our integration needs (created by HubSpotCrm.ensure_properties) ---------
def _text(name: str, label: str, *, textarea: bool = False, unique: bool = False) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "string", "fieldType": "textarea" if textarea else "text",
            **({"hasUniqueValue": True} if unique else {})}


def _number(name: str, label: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "number", "fieldType": "number"}


def _date(name: str, label: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "date", "fieldType": "date"}


def _choice(name: str, label: str, values: list[str]) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "enumeration", "fieldType": "select",
            "options": [{"label": v.replace("_", " ").capitalize(), "value": v, "displayOrder": i, "hidden": False}
                        for i, v in enumerate(values)]}


_BOOL_OPTIONS = [{"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
                 {"label": "No", "value": "false", "displayOrder": 1, "hidden": False}]


def writeback_property(field: str) -> str:
    """The deal property of a :class:`DealWriteBack` field: ``revops_<field>`` (no double prefix)."""
    return field if field.startswith("revops_") else f"revops_{field}"


#: DealWriteBack field -> HubSpot deal property
WRITEBACK_PROPERTIES: dict[str, str] = {f: writeback_property(f) for f in DealWriteBack.model_fields}

#: what deal reads ask for: CRM fields, commercial fields, and our write-backs (``Deal.write_backs``)
DEAL_READ_PROPERTIES = [*DEAL_PROPERTIES, *WRITEBACK_PROPERTIES.values()]

PROPERTY_GROUPS = {"deals": "dealinformation", "companies": "companyinformation",
                   "contacts": "contactinformation", "line_items": "lineiteminformation"}

#: object type -> definitions of the custom properties flows read or write
REVOPS_PROPERTIES: dict[str, list[dict[str, Any]]] = {
    "deals": [
        _text("revops_region", "Region (RevOps)"),
        _text("revops_legal_entity", "Legal entity (RevOps)"),
        _choice("revops_billing_model", "Billing model (RevOps)", _BILLING_MODELS),
        _date("revops_start_date", "Service start date (RevOps)"),
        _date("revops_end_date", "Service end date (RevOps)"),
        _number("revops_payment_terms_days", "Payment terms, days (RevOps)"),
        {"name": "revops_non_standard_terms", "label": "Non-standard terms (RevOps)", "type": "bool",
         "fieldType": "booleancheckbox", "options": _BOOL_OPTIONS},
        *[(_number(p, "Contract value (RevOps)") if f == "contract_value"
           else _number(p, f.replace("_", " ").capitalize() + " (RevOps)")
           if f in ("forecast_amount", "forecast_monthly_recurring")
           else _text(p, f.replace("_", " ").capitalize() + " (RevOps)",
                      textarea=f in ("revops_exception", "approval_note", "provisioned")))
          for f, p in WRITEBACK_PROPERTIES.items()],
    ],
    "companies": [_text(EXTERNAL_REF_PROPERTY, "External reference (RevOps)", unique=True)],
    "contacts": [_choice("revops_contact_role", "Contact role (RevOps)", ["billing", "signer"])],
    "line_items": [_choice("revops_billing_model", "Billing model (RevOps)", _BILLING_MODELS),
                   _text("revops_legal_entity", "Legal entity (RevOps)")],
}

_FIGURE_FIELDS = ("billed", "paid", "outstanding", "overdue", "credited", "dso_days", "unbilled")


def figure_property(field: str, currency: str) -> str:
    """``revops_billed_usd`` and friends: one company property per figure and currency."""
    return f"revops_{field}_{currency.lower()}"


def property_definition(object_type: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A ``PropertyCreate`` body for the Properties API."""
    return {"groupName": PROPERTY_GROUPS[object_type], "description": "Maintained by the RevOps integration.",
            "formField": False, **spec}


def figure_definitions(properties: Mapping[str, str]) -> list[dict[str, Any]]:
    """Definitions for the figure properties in ``properties`` (created on demand per currency)."""
    result = []
    for name in properties:
        if name == "revops_last_payment_date":
            result.append(_date(name, "Last payment date (RevOps)"))
        else:
            result.append(_number(name, name.removeprefix("revops_").replace("_", " ").capitalize() + " (RevOps)"))
    return result


# -- parsing helpers -----------------------------------------------------------------------------
def _clean(props: Mapping[str, Any], name: str) -> str | None:
    value = props.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _decimal(props: Mapping[str, Any], name: str) -> Decimal | None:
    text = _clean(props, name)
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        log.warning("hubspot property %s=%r is not a number", name, text)
        return None
    return value if value.is_finite() else None


def parse_date(value: str | None) -> date | None:
    """A HubSpot date: ``YYYY-MM-DD``, an ISO datetime, or epoch milliseconds (older portals)."""
    moment = parse_datetime(value)
    return moment.date() if moment else None


def parse_datetime(value: str | None) -> datetime | None:
    """A HubSpot datetime (ISO 8601 or epoch milliseconds) as an aware UTC datetime."""
    if not value:
        return None
    text = value.strip()
    try:
        if re.fullmatch(r"-?\d+", text):
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        log.warning("hubspot value %r is not a date", value)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _currency(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return normalise_currency(value)
    except ValueError:
        log.warning("hubspot currency %r is not supported", value)
        return None


def _billing_model(value: str | None) -> BillingModel | None:
    if not value:
        return None
    try:
        return BillingModel(value.strip().lower())
    except ValueError:
        log.warning("hubspot billing model %r is unknown", value)
        return None


_COUNTRY_CODES = {
    "united states": "US", "united states of america": "US", "usa": "US", "canada": "CA", "mexico": "MX",
    "germany": "DE", "deutschland": "DE", "france": "FR", "netherlands": "NL", "the netherlands": "NL",
    "spain": "ES", "italy": "IT", "austria": "AT", "belgium": "BE", "ireland": "IE", "united kingdom": "GB",
    "uk": "GB", "great britain": "GB", "england": "GB", "switzerland": "CH", "australia": "AU", "japan": "JP",
    "singapore": "SG", "india": "IN", "sweden": "SE", "denmark": "DK", "norway": "NO", "poland": "PL",
}


def country_code(value: str | None) -> str | None:
    """HubSpot's free-text country as ISO 3166-1 alpha-2 when recognisable, else as given."""
    if not value:
        return None
    text = value.strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return _COUNTRY_CODES.get(text.lower(), text)


# -- HubSpot -> canonical ------------------------------------------------------------------------
def account_from_hubspot(obj: Mapping[str, Any]) -> Account:
    """A company object as an :class:`Account`."""
    props = obj.get("properties") or {}
    address = Address(line1=_clean(props, "address"), line2=_clean(props, "address2"),
                      city=_clean(props, "city"), region=_clean(props, "state"),
                      postal_code=_clean(props, "zip"), country=country_code(_clean(props, "country")))
    has_address = any(v is not None for v in address.model_dump().values())
    name = _clean(props, "name") or _clean(props, "domain") or f"HubSpot company {obj['id']}"
    return Account(crm_id=str(obj["id"]), name=name, domain=_clean(props, "domain"),
                   country=address.country, address=address if has_address else None)


def contact_from_hubspot(obj: Mapping[str, Any]) -> Contact:
    """A contact object as a :class:`Contact` (role from ``revops_contact_role``)."""
    props = obj.get("properties") or {}
    role = _clean(props, "revops_contact_role")
    return Contact(crm_id=str(obj["id"]), first_name=_clean(props, "firstname"),
                   last_name=_clean(props, "lastname"), email=_clean(props, "email"),
                   phone=_clean(props, "phone"), role=role.lower() if role else None)


def line_from_hubspot(obj: Mapping[str, Any]) -> DealLine | None:
    """A line item as a :class:`DealLine`; ``None`` (logged) when it cannot be one at all."""
    props = obj.get("properties") or {}
    line_id = str(obj["id"])
    product_code = _clean(props, "hs_sku") or _clean(props, "hs_product_id") or f"hubspot-line-item-{line_id}"
    quantity = _decimal(props, "quantity")
    discount = _decimal(props, "hs_discount_percentage") or Decimal(0)
    frequency = (_clean(props, "recurringbillingfrequency") or "").lower()
    try:
        return DealLine(
            crm_id=line_id, product_code=product_code,
            name=_clean(props, "name") or product_code,
            # HubSpot's UI defaults quantity to 1; a missing one means the same.
            quantity=quantity if quantity is not None else Decimal(1),
            unit_price=_decimal(props, "price") or Decimal(0),
            discount_percent=discount,
            billing_model=_billing_model(_clean(props, "revops_billing_model")),
            interval=_INTERVALS.get(frequency),
            legal_entity=_clean(props, "revops_legal_entity"),
        )
    except ValidationError as exc:
        log.warning("hubspot line item %s skipped: %s", line_id, exc.errors(include_url=False))
        return None


def deal_from_hubspot(obj: Mapping[str, Any], *, company: Mapping[str, Any] | None = None,
                      contacts: Sequence[Mapping[str, Any]] | None = None,
                      line_items: Sequence[Mapping[str, Any]] | None = None) -> Deal:
    """A deal object (and its associated objects when loaded) as a canonical :class:`Deal`."""
    props = obj.get("properties") or {}
    deal_id = str(obj["id"])
    terms = _decimal(props, "revops_payment_terms_days")
    start = parse_date(_clean(props, "revops_start_date"))
    end = parse_date(_clean(props, "revops_end_date"))
    if start and end and end < start:
        log.warning("hubspot deal %s: end date %s before start %s ignored", deal_id, end, start)
        end = None
    lines = [line for line in (line_from_hubspot(o) for o in line_items or []) if line is not None]
    write_backs = write_backs_from_hubspot(deal_id, props)
    return Deal(
        crm_id=deal_id,
        name=_clean(props, "dealname") or f"HubSpot deal {deal_id}",
        stage=_clean(props, "dealstage"),
        amount=_decimal(props, "amount"),
        currency=_currency(_clean(props, "deal_currency_code")),
        region=_clean(props, "revops_region"),
        legal_entity=_clean(props, "revops_legal_entity"),
        billing_model=_billing_model(_clean(props, "revops_billing_model")),
        start_date=start,
        end_date=end,
        payment_terms_days=int(terms) if terms is not None and terms >= 0 and terms == int(terms) else None,
        non_standard_terms=(_clean(props, "revops_non_standard_terms") or "").lower() == "true",
        owner_id=_clean(props, "hubspot_owner_id"),
        account=account_from_hubspot(company) if company else None,
        contacts=[contact_from_hubspot(c) for c in contacts or []],
        lines=lines,
        write_backs=write_backs,
    )


def write_backs_from_hubspot(deal_id: str, props: Mapping[str, Any]) -> DealWriteBack:
    """Our own earlier write-backs on a deal, typed. A provisioning record that no longer parses (edited by
    hand) is dropped with a warning: the flows that need it then stop in a visible exception."""
    values: dict[str, Any] = {field: value for field, prop in WRITEBACK_PROPERTIES.items()
                              if (value := _clean(props, prop)) is not None}
    record = values.pop("provisioned", None)
    if record is not None:
        try:
            values["provisioned"] = ProvisioningRecord.model_validate_json(record)
        except ValueError:
            log.warning("hubspot deal %s: %s does not parse; ignored", deal_id, WRITEBACK_PROPERTIES["provisioned"])
    return DealWriteBack.model_validate(values)


# -- canonical -> HubSpot ------------------------------------------------------------------------
def writeback_properties(update: DealWriteBack) -> dict[str, str]:
    """The deal properties a write-back sets (fields left ``None`` are not sent)."""
    return {WRITEBACK_PROPERTIES[field]: value for field, value in update.properties().items()}


def company_external_ref(account: Account) -> str:
    """Our unique key for a company: the normalised web domain (HubSpot's own company identity),
    else the ERP contact, else the billing customer. Raises ``ValueError`` when there is none."""
    if account.domain:
        domain = account.domain.strip().lower().removeprefix("https://").removeprefix("http://")
        domain = domain.removeprefix("www.").split("/")[0]
        if domain:
            return f"domain:{domain}"
    if account.erp_contact_id:
        return f"xero:contact:{account.erp_contact_id}"
    if account.billing_customer_id:
        return f"stripe:customer:{account.billing_customer_id}"
    raise ValueError(f"account {account.name!r} has no domain, ERP contact or billing customer to key it by")


def company_properties(account: Account) -> dict[str, str]:
    """Company properties for an upsert (only what the account has)."""
    address = account.address or Address()
    values = {"name": account.name, "domain": account.domain, "address": address.line1, "address2": address.line2,
              "city": address.city, "state": address.region, "zip": address.postal_code,
              "country": address.country or account.country}
    return {k: v for k, v in values.items() if v}


def figures_properties(figures: list[AccountFigures]) -> dict[str, str]:
    """Company properties for billing roll-ups: one per figure and currency, plus the latest payment."""
    props: dict[str, str] = {}
    latest: date | None = None
    for figure in figures:
        for field in _FIGURE_FIELDS:
            value = getattr(figure, field)
            if value is not None:
                props[figure_property(field, figure.currency)] = str(value)
        if figure.last_payment_date and (latest is None or figure.last_payment_date > latest):
            latest = figure.last_payment_date
    if latest:
        props["revops_last_payment_date"] = latest.isoformat()
    return props


def millis(moment: datetime) -> str:
    """Epoch milliseconds, as HubSpot search filters take datetimes (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp() * 1000))
