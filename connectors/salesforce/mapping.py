"""Salesforce <-> canonical, one function per object and direction.

Salesforce returns typed JSON (numbers, booleans, ``null``); a record that lacks data still maps: what cannot be
read becomes ``None`` and the workflow's own checks (``Deal.missing_commercial_fields``) say what is missing. The
integration's own fields are custom fields named ``Revops_<Field>__c``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from canonical import Account, Address, BillingInterval, BillingModel, Contact, Deal, DealLine
from canonical.money import normalise_currency
from canonical.requests import AccountFigures, DealWriteBack, ProvisioningRecord
from connectors.salesforce.ids import to_18

log = logging.getLogger(__name__)

EXTERNAL_REF_FIELD = "Revops_External_Ref__c"

# The fields read per object, each with the canonical field it fills and how: the queries ask for exactly these,
# and docs/field-mapping.md is generated from them. "-": read, not mapped.
OPPORTUNITY_FIELDS: dict[str, tuple[str, str]] = {
    "Name": ("Deal.name", "text; `Salesforce opportunity <id>` when empty"),
    "Amount": ("Deal.amount", "decimal; None when absent"),
    "StageName": ("Deal.stage", "text (the picklist's API value)"),
    "CurrencyIsoCode": ("Deal.currency", "ISO 4217 (multi-currency orgs)"),
    "CloseDate": ("-", "read with the opportunity, not mapped"),
    "AccountId": ("Deal.account", "the Account read by ID"),
    "OwnerId": ("Deal.owner_id", "18-character user ID; the approver who may not decide on this deal"),
    "SystemModstamp": ("DealStageReached.occurred_at", "datetime; the poll's checkpoint"),
    "Revops_Region__c": ("Deal.region", "text"),
    "Revops_Legal_Entity__c": ("Deal.legal_entity", "text (entity code)"),
    "Revops_Billing_Model__c": ("Deal.billing_model", "picklist -> BillingModel; None when unknown"),
    "Revops_Start_Date__c": ("Deal.start_date", "date"),
    "Revops_End_Date__c": ("Deal.end_date", "date; dropped when before the start"),
    "Revops_Payment_Terms_Days__c": ("Deal.payment_terms_days", "non-negative whole number"),
    "Revops_Non_Standard_Terms__c": ("Deal.non_standard_terms", "checkbox"),
}
LINE_ITEM_FIELDS: dict[str, tuple[str, str]] = {
    "PricebookEntry.Product2.Name": ("DealLine.name", "the product's name"),
    "Name": ("DealLine.name", "fallback: the line's name (opportunity and product), else the product code"),
    "ProductCode": ("DealLine.product_code", "the Product2 code; else `salesforce-line-item-<id>`"),
    "Quantity": ("DealLine.quantity", "decimal; 1 when empty"),
    "UnitPrice": ("DealLine.unit_price", "decimal (the sales price); 0 when empty"),
    "Discount": ("DealLine.discount_percent", "percent; 0 when empty"),
    "Revops_Billing_Interval__c": ("DealLine.interval", "Monthly/Quarterly/Annually -> BillingInterval"),
    "Revops_Billing_Model__c": ("DealLine.billing_model", "picklist -> BillingModel"),
    "Revops_Legal_Entity__c": ("DealLine.legal_entity", "text (entity code)"),
}
ACCOUNT_FIELDS: dict[str, tuple[str, str]] = {
    "Name": ("Account.name", "text; the website, else `Salesforce account <id>`, when empty"),
    "Website": ("Account.domain", "host name without scheme and www."),
    "BillingStreet": ("Account.address.line1", "first line (the rest -> line2)"),
    "BillingCity": ("Account.address.city", "text"),
    "BillingState": ("Account.address.region", "text"),
    "BillingPostalCode": ("Account.address.postal_code", "text"),
    "BillingCountry": ("Account.country", "ISO 3166 alpha-2 from a code or a name"),
    EXTERNAL_REF_FIELD: ("Account.crm_id", "external ID, upsert key: `domain:<domain>`, else the ERP or billing ID"),
}
CONTACT_ROLE_FIELDS: dict[str, tuple[str, str]] = {
    "ContactId": ("Contact.crm_id", "18-character ID"),
    "Role": ("Contact.role", "Billing Contact -> billing, Signer -> signer, else lower-cased"),
    "IsPrimary": ("-", "primary contact first"),
    "Contact.FirstName": ("Contact.first_name", "text"),
    "Contact.LastName": ("Contact.last_name", "text"),
    "Contact.Email": ("Contact.email", "text"),
    "Contact.Phone": ("Contact.phone", "text"),
}

_INTERVALS = {"monthly": BillingInterval.MONTH, "quarterly": BillingInterval.QUARTER,
              "annually": BillingInterval.YEAR, "yearly": BillingInterval.YEAR}
_ROLES = {"billing contact": "billing", "billing": "billing", "signer": "signer", "signatory": "signer"}
FIGURE_FIELDS = ("billed", "paid", "outstanding", "overdue", "credited", "dso_days", "unbilled")


def custom_field(name: str) -> str:
    """``revops_status`` -> ``Revops_Status__c``: our field as a Salesforce custom field."""
    return "Revops_" + "_".join(p.capitalize() for p in name.removeprefix("revops_").split("_") if p) + "__c"


#: DealWriteBack field -> Opportunity custom field
WRITEBACK_FIELDS: dict[str, str] = {f: custom_field(f) for f in DealWriteBack.model_fields}
OPPORTUNITY_READ_FIELDS = ["Id", *OPPORTUNITY_FIELDS, *WRITEBACK_FIELDS.values()]
LINE_ITEM_READ_FIELDS = ["Id", *LINE_ITEM_FIELDS]
ACCOUNT_READ_FIELDS = ["Id", *ACCOUNT_FIELDS]
CONTACT_ROLE_READ_FIELDS = ["Id", *CONTACT_ROLE_FIELDS]


def figure_field(field: str, currency: str) -> str:
    """``Revops_Billed_USD__c`` and friends: one custom field per figure and currency."""
    return f"Revops_{'_'.join(p.capitalize() for p in field.split('_'))}_{currency.upper()}__c"


LAST_PAYMENT_FIELD = "Revops_Last_Payment_Date__c"


# -- parsing -------------------------------------------------------------------------------------
def _text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _path(record: Mapping[str, Any], dotted: str) -> Any:
    """A relationship field (``Contact.Email``) from a query row; ``None`` when any step is null."""
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _decimal(record: Mapping[str, Any], name: str) -> Decimal | None:
    value = record.get(name)
    if value is None or isinstance(value, bool):
        return None
    try:
        # Salesforce sends currency and number fields as JSON numbers: read their text, never a float
        number = Decimal(str(value))
    except InvalidOperation:
        log.warning("salesforce field %s is not a number", name)
        return None
    return number if number.is_finite() else None


def parse_date(value: Any) -> date | None:
    """A Salesforce date (``YYYY-MM-DD``) or the date of a datetime."""
    moment = parse_datetime(value)
    return moment.date() if moment else None


def parse_datetime(value: Any) -> datetime | None:
    """A Salesforce datetime (``2024-05-01T10:00:00.000+0000``) or date, as an aware UTC datetime."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        elif len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = f"{text[:-2]}:{text[-2:]}"  # +0000 -> +00:00
        parsed = datetime.fromisoformat(text)
    except ValueError:
        log.warning("salesforce value %r is not a date", value)
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def soql_datetime(moment: datetime) -> str:
    """A datetime literal for SOQL (unquoted, UTC, ``Z``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def soql_string(value: str) -> str:
    """A quoted SOQL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _currency(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return normalise_currency(value)
    except ValueError:
        log.warning("salesforce currency %r is not supported", value)
        return None


def _billing_model(value: str | None) -> BillingModel | None:
    if not value:
        return None
    try:
        return BillingModel(value.strip().lower().replace(" ", "_"))
    except ValueError:
        log.warning("salesforce billing model %r is unknown", value)
        return None


_COUNTRIES = {"united states": "US", "united states of america": "US", "usa": "US", "canada": "CA",
              "germany": "DE", "france": "FR", "netherlands": "NL", "spain": "ES", "italy": "IT",
              "ireland": "IE", "united kingdom": "GB", "uk": "GB", "switzerland": "CH", "australia": "AU",
              "japan": "JP", "singapore": "SG", "india": "IN", "sweden": "SE", "austria": "AT", "belgium": "BE"}


def country_code(value: str | None) -> str | None:
    """The billing country as ISO 3166-1 alpha-2 when recognisable, else as given."""
    if not value:
        return None
    text = value.strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return _COUNTRIES.get(text.lower(), text)


def domain_of(website: str | None) -> str | None:
    """``https://www.acme.com/about`` -> ``acme.com``."""
    if not website:
        return None
    host = website.strip().lower().removeprefix("https://").removeprefix("http://").removeprefix("www.")
    return host.split("/")[0] or None


# -- Salesforce -> canonical -----------------------------------------------------------------------
def account_from_salesforce(record: Mapping[str, Any]) -> Account:
    """An Account record as an :class:`Account`."""
    account_id = to_18(str(record["Id"]))
    street = (_text(record, "BillingStreet") or "").split("\n")
    address = Address(line1=street[0].strip() or None, line2=" ".join(s.strip() for s in street[1:]) or None,
                      city=_text(record, "BillingCity"), region=_text(record, "BillingState"),
                      postal_code=_text(record, "BillingPostalCode"),
                      country=country_code(_text(record, "BillingCountry")))
    has_address = any(v is not None for v in address.model_dump().values())
    domain = domain_of(_text(record, "Website"))
    return Account(crm_id=account_id, name=_text(record, "Name") or domain or f"Salesforce account {account_id}",
                   domain=domain, country=address.country, address=address if has_address else None)


def contact_from_role(row: Mapping[str, Any]) -> Contact:
    """An OpportunityContactRole row (with its ``Contact.*`` fields) as a :class:`Contact`."""
    role = (_text(row, "Role") or "").lower()

    def field(name: str) -> str | None:
        value = _path(row, f"Contact.{name}")
        return str(value).strip() or None if value is not None else None

    return Contact(crm_id=to_18(str(row["ContactId"])), first_name=field("FirstName"), last_name=field("LastName"),
                   email=field("Email"), phone=field("Phone"), role=_ROLES.get(role, role or None))


def line_from_salesforce(record: Mapping[str, Any]) -> DealLine | None:
    """An OpportunityLineItem as a :class:`DealLine`; ``None`` (logged) when it cannot be one."""
    line_id = to_18(str(record["Id"]))
    product_name = _path(record, "PricebookEntry.Product2.Name")
    code = _text(record, "ProductCode") or f"salesforce-line-item-{line_id}"
    quantity = _decimal(record, "Quantity")
    try:
        return DealLine(
            crm_id=line_id, product_code=code,
            name=(str(product_name).strip() if product_name else None) or _text(record, "Name") or code,
            quantity=quantity if quantity is not None else Decimal(1),
            unit_price=_decimal(record, "UnitPrice") or Decimal(0),
            discount_percent=_decimal(record, "Discount") or Decimal(0),
            billing_model=_billing_model(_text(record, "Revops_Billing_Model__c")),
            interval=_INTERVALS.get((_text(record, "Revops_Billing_Interval__c") or "").lower()),
            legal_entity=_text(record, "Revops_Legal_Entity__c"),
        )
    except ValidationError as exc:
        log.warning("salesforce line item %s skipped: %s", line_id, exc.errors(include_url=False))
        return None


def deal_from_salesforce(record: Mapping[str, Any], *, account: Mapping[str, Any] | None = None,
                         contact_roles: Sequence[Mapping[str, Any]] | None = None,
                         line_items: Sequence[Mapping[str, Any]] | None = None) -> Deal:
    """An Opportunity (and its account, contact roles and line items when loaded) as a canonical :class:`Deal`."""
    deal_id = to_18(str(record["Id"]))
    terms = _decimal(record, "Revops_Payment_Terms_Days__c")
    start = parse_date(record.get("Revops_Start_Date__c"))
    end = parse_date(record.get("Revops_End_Date__c"))
    if start and end and end < start:
        log.warning("salesforce opportunity %s: end date before start ignored", deal_id)
        end = None
    roles = sorted(contact_roles or [], key=lambda r: not r.get("IsPrimary"))
    lines = [line for line in (line_from_salesforce(r) for r in line_items or []) if line is not None]
    owner = _text(record, "OwnerId")
    return Deal(
        crm_id=deal_id,
        name=_text(record, "Name") or f"Salesforce opportunity {deal_id}",
        stage=_text(record, "StageName"),
        amount=_decimal(record, "Amount"),
        currency=_currency(_text(record, "CurrencyIsoCode")),
        region=_text(record, "Revops_Region__c"),
        legal_entity=_text(record, "Revops_Legal_Entity__c"),
        billing_model=_billing_model(_text(record, "Revops_Billing_Model__c")),
        start_date=start, end_date=end,
        payment_terms_days=int(terms) if terms is not None and terms >= 0 and terms == int(terms) else None,
        non_standard_terms=record.get("Revops_Non_Standard_Terms__c") is True,
        owner_id=to_18(owner) if owner else None,
        account=account_from_salesforce(account) if account else None,
        contacts=[contact_from_role(r) for r in roles if r.get("ContactId")],
        lines=lines,
        write_backs=write_backs_from_salesforce(deal_id, record),
    )


def write_backs_from_salesforce(deal_id: str, record: Mapping[str, Any]) -> DealWriteBack:
    """Our own earlier write-backs on an opportunity, typed; a provisioning record that no longer parses is dropped
    with a warning (the flows that need it then stop in a visible exception)."""
    values: dict[str, Any] = {field: value for field, name in WRITEBACK_FIELDS.items()
                              if (value := _text(record, name)) is not None}
    provisioned = values.pop("provisioned", None)
    if provisioned is not None:
        try:
            values["provisioned"] = ProvisioningRecord.model_validate_json(provisioned)
        except ValueError:
            log.warning("salesforce opportunity %s: %s does not parse; ignored", deal_id,
                        WRITEBACK_FIELDS["provisioned"])
    return DealWriteBack.model_validate(values)


# -- canonical -> Salesforce -----------------------------------------------------------------------
def writeback_fields(update: DealWriteBack) -> dict[str, str]:
    """The Opportunity fields a write-back sets (fields left ``None`` are not sent)."""
    return {WRITEBACK_FIELDS[field]: value for field, value in update.properties().items()}


def account_external_ref(account: Account) -> str:
    """Our unique key for an account: the normalised web domain, else the ERP contact, else the billing customer.
    Raises ``ValueError`` when there is none."""
    domain = domain_of(account.domain)
    if domain:
        return f"domain:{domain}"
    if account.erp_contact_id:
        return f"erp:contact:{account.erp_contact_id}"
    if account.billing_customer_id:
        return f"billing:customer:{account.billing_customer_id}"
    raise ValueError(f"account {account.name!r} has no domain, ERP contact or billing customer to key it by")


def account_fields(account: Account) -> dict[str, str]:
    """Account fields for an upsert (only what the account has)."""
    address = account.address or Address()
    street = "\n".join(p for p in (address.line1, address.line2) if p) or None
    values = {"Name": account.name, "Website": account.domain, "BillingStreet": street,
              "BillingCity": address.city, "BillingState": address.region,
              "BillingPostalCode": address.postal_code, "BillingCountry": address.country or account.country}
    return {k: v for k, v in values.items() if v}


def figures_fields(figures: list[AccountFigures]) -> dict[str, Any]:
    """Custom fields for billing roll-ups: one per figure and currency, plus the latest payment date."""
    fields: dict[str, Any] = {}
    latest: date | None = None
    for figure in figures:
        for name in FIGURE_FIELDS:
            value = getattr(figure, name)
            if value is not None:
                fields[figure_field(name, figure.currency)] = value
        if figure.last_payment_date and (latest is None or figure.last_payment_date > latest):
            latest = figure.last_payment_date
    if latest:
        fields[LAST_PAYMENT_FIELD] = latest.isoformat()
    return fields
