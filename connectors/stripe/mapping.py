"""Stripe <-> canonical, one function per object and direction.

Amounts on the wire are integer minor units in lower-case currencies; canonical money is
``Money`` (Decimal, upper-case ISO code). Metadata keys the integration writes and reads:

* customers: ``revops_ref`` (the lookup reference), ``legal_entity``, ``crm_company_id``, ``crm_contact_id``,
  ``revops_created_by`` (the creating run's ownership mark, ``canonical.refs.ownership_marker``)
* prices, invoice items (and so invoice lines): ``revops_product_code``
* subscriptions and one-off invoices: the schedule's own metadata plus ``revops_schedule_kind``
  (and ``revops_bill_on``/``revops_milestone`` on milestone invoices). An invoice's
  ``crm_deal_id`` is read from ``revops_deal_id`` (or ``crm_deal_id``), its ``legal_entity`` from
  ``legal_entity`` (or ``revops_legal_entity``, which quote-to-cash schedules set), looking at the
  invoice's metadata and then its subscription's (``subscription_details.metadata``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from canonical import (
    Account,
    Address,
    BillingInterval,
    Contact,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    Payment,
    ScheduledCharge,
    TaxLine,
)
from canonical.amendments import BillingRecord, BillingRecordKind

REF_KEY = "revops_ref"
CREATED_BY_KEY = "revops_created_by"
PRODUCT_KEY = "revops_product_code"
DEAL_KEYS = ("revops_deal_id", "crm_deal_id")
ENTITY_KEY = "legal_entity"
#: where an invoice's legal entity may be: our customers' key, then the one quote-to-cash schedules set
ENTITY_KEYS = (ENTITY_KEY, "revops_legal_entity")
PROJECT_KEY = "revops_project"
CREDIT_NOTE_REASONS = frozenset({"duplicate", "fraudulent", "order_change", "product_unsatisfactory"})

#: canonical interval -> Stripe ``recurring`` (a quarter is three months)
RECURRING: dict[BillingInterval, dict[str, Any]] = {
    BillingInterval.MONTH: {"interval": "month", "interval_count": 1},
    BillingInterval.QUARTER: {"interval": "month", "interval_count": 3},
    BillingInterval.YEAR: {"interval": "year", "interval_count": 1},
}


# -- helpers -------------------------------------------------------------------------------------
def money(units: int | None, currency: str) -> Money:
    """Minor units to ``Money`` (``None`` is zero)."""
    return Money.from_minor(int(units or 0), currency)


def clean_metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """Metadata as Stripe takes it: strings only, no empties, keys <= 40 and values <= 500 chars."""
    return {str(k)[:40]: str(v)[:500] for k, v in values.items() if v is not None and str(v) != ""}


def _date(ts: int | None) -> date | None:
    return datetime.fromtimestamp(ts, tz=UTC).date() if ts else None


def _id(value: Any) -> str | None:
    """An ID from a field that may be expanded into an object."""
    if isinstance(value, Mapping):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None


# -- canonical -> Stripe ----------------------------------------------------------------------------
def customer_params(account: Account, contact: Contact | None, *, reference: str,
                    legal_entity: str, marker: str | None = None) -> dict[str, Any]:
    """``POST /v1/customers`` params for an account (with its billing contact); ``marker`` is the creating
    run's ownership mark (metadata ``revops_created_by``)."""
    address = account.address
    params: dict[str, Any] = {
        "name": account.name,
        "email": contact.email if contact else None,
        "phone": contact.phone if contact else None,
        "metadata": clean_metadata({
            REF_KEY: reference, ENTITY_KEY: legal_entity, "crm_company_id": account.crm_id, CREATED_BY_KEY: marker,
            "crm_contact_id": contact.crm_id if contact else None,
            "billing_contact": contact.full_name if contact else None,
        }),
    }
    if address is not None or account.country:
        params["address"] = {k: v for k, v in {
            "line1": address.line1 if address else None, "line2": address.line2 if address else None,
            "city": address.city if address else None, "state": address.region if address else None,
            "postal_code": address.postal_code if address else None,
            "country": (address.country if address and address.country else account.country),
        }.items() if v}
    return params


def unit_and_quantity(charge: ScheduledCharge) -> tuple[int, int]:
    """Stripe quantities are integers: a fractional quantity is folded into one line of the total."""
    quantity = charge.quantity
    if quantity == quantity.to_integral_value():
        return charge.unit_amount.to_minor(), int(quantity)
    return charge.unit_amount.times(quantity).to_minor(), 1


def product_params(charge: ScheduledCharge, metadata: Mapping[str, str]) -> dict[str, Any]:
    return {"name": charge.description or charge.product_code,
            "metadata": clean_metadata({**metadata, PRODUCT_KEY: charge.product_code})}


def price_params(charge: ScheduledCharge, product_id: str, *, recurring: bool,
                 metadata: Mapping[str, str]) -> dict[str, Any]:
    unit, _quantity = unit_and_quantity(charge)
    params: dict[str, Any] = {
        "product": product_id, "currency": charge.unit_amount.currency.lower(), "unit_amount": unit,
        "nickname": charge.description[:250] if charge.description else None,
        "metadata": clean_metadata({**metadata, PRODUCT_KEY: charge.product_code}),
    }
    if recurring:
        params["recurring"] = RECURRING[charge.interval or BillingInterval.MONTH]
    return params


def credit_note_params(note: CreditNote) -> dict[str, Any]:
    """Stripe's ``reason`` is an enum; any other reason text travels as the memo."""
    reason = (note.reason or "").strip()
    enum_reason = reason if reason in CREDIT_NOTE_REASONS else None
    return {
        "invoice": note.invoice_billing_id, "amount": note.amount.to_minor(), "reason": enum_reason,
        "memo": reason if reason and enum_reason is None else None,
        "metadata": clean_metadata({"revops_credit_note_ref": note.billing_id or None}),
    }


# -- Stripe -> canonical ----------------------------------------------------------------------------
def invoice_metadata(obj: Mapping[str, Any]) -> dict[str, str]:
    """The invoice's metadata over its subscription's (Stripe does not copy one into the other)."""
    details = obj.get("subscription_details") or {}
    merged = {**(details.get("metadata") or {}), **(obj.get("metadata") or {})}
    return {str(k): str(v) for k, v in merged.items()}


def invoice_line(obj: Mapping[str, Any], currency: str) -> InvoiceLine:
    quantity = Decimal(obj.get("quantity") or 1)
    amount = money(obj.get("amount"), currency)
    price = obj.get("price") if isinstance(obj.get("price"), Mapping) else {}
    unit_raw = price.get("unit_amount") if price else None
    unit = money(unit_raw, currency) if unit_raw is not None else Money(
        amount=amount.amount / quantity, currency=currency)
    product = price.get("product") if price else None
    code = ((obj.get("metadata") or {}).get(PRODUCT_KEY) or ((price or {}).get("metadata") or {}).get(PRODUCT_KEY)
            or _id(product))
    taxes = []
    for tax in obj.get("tax_amounts") or []:
        taxable = int(tax.get("taxable_amount") or 0)
        rate = (Decimal(int(tax["amount"])) * 100 / taxable).quantize(Decimal("0.0001")) if taxable else Decimal(0)
        taxes.append(TaxLine(name=_id(tax.get("tax_rate")) or "tax", rate_percent=rate,
                             amount=money(tax.get("amount"), currency)))
    return InvoiceLine(description=obj.get("description") or code or "", quantity=quantity, unit_amount=unit,
                       amount=amount, product_code=code, taxes=taxes)


def invoice(obj: Mapping[str, Any], *, more_lines: Sequence[Mapping[str, Any]] | None = None) -> Invoice:
    """A Stripe invoice as canonical. ``amount_due`` is what is still owed (Stripe's ``amount_remaining``).

    Stripe embeds only the first lines (``lines.has_more``); ``more_lines`` are the rest, read from
    ``GET /v1/invoices/{id}/lines``. Without them such an invoice is ``lines_complete=False``.
    """
    currency = str(obj["currency"]).upper()
    metadata = invoice_metadata(obj)
    tax_units = obj.get("tax")
    if tax_units is None:
        tax_units = sum(int(t.get("amount") or 0) for t in obj.get("total_tax_amounts") or [])
    transitions = obj.get("status_transitions") or {}
    embedded = obj.get("lines") if isinstance(obj.get("lines"), Mapping) else None
    lines = [*((embedded or {}).get("data") or []), *(more_lines or [])]
    complete = embedded is not None and (not embedded.get("has_more") or more_lines is not None)
    if "amount_remaining" not in obj:
        raise KeyError("amount_remaining")
    return Invoice(
        billing_id=str(obj["id"]), number=obj.get("number"), customer_id=_id(obj.get("customer")) or "",
        currency=currency, status=InvoiceStatus(obj.get("status") or "draft"),
        issued_on=_date(transitions.get("finalized_at")), due_on=_date(obj.get("due_date")),
        lines=[invoice_line(line, currency) for line in lines], lines_complete=complete,
        subtotal=money(obj.get("subtotal"), currency), tax=money(tax_units, currency),
        total=money(obj.get("total"), currency), amount_paid=money(obj.get("amount_paid"), currency),
        amount_due=money(obj.get("amount_remaining"), currency),
        crm_deal_id=next((metadata[k] for k in DEAL_KEYS if metadata.get(k)), None),
        legal_entity=next((metadata[k] for k in ENTITY_KEYS if metadata.get(k)), None), metadata=metadata,
        payment_ids=[c for c in [_id(obj.get("charge"))] if c and int(obj.get("amount_paid") or 0) > 0],
    )


def payment(obj: Mapping[str, Any], *, amount_units: int, event_id: str, event_created: int) -> Payment:
    """One payment against an invoice: the charge ID when there is one, else the event's ID.

    ``amount_units`` is what this payment added to ``amount_paid`` (see ``webhooks`` for how it is found).
    """
    currency = str(obj["currency"]).upper()
    charge = _id(obj.get("charge"))
    paid_at = (obj.get("status_transitions") or {}).get("paid_at") if obj.get("status") == "paid" else None
    return Payment(
        billing_id=charge or event_id, invoice_billing_id=str(obj["id"]),
        amount=money(amount_units, currency),
        paid_at=datetime.fromtimestamp(paid_at or event_created, tz=UTC),
        method="out_of_band" if obj.get("paid_out_of_band") and not charge else "stripe",
    )


def credit_note(obj: Mapping[str, Any]) -> CreditNote:
    currency = str(obj["currency"]).upper()
    return CreditNote(
        billing_id=str(obj["id"]), invoice_billing_id=_id(obj.get("invoice")) or "",
        amount=money(obj.get("total", obj.get("amount")), currency),
        reason=obj.get("reason") or obj.get("memo"),
        issued_at=datetime.fromtimestamp(int(obj.get("effective_at") or obj["created"]), tz=UTC),
    )


def interval_of(recurring: Mapping[str, Any] | None) -> BillingInterval | None:
    """Stripe ``recurring`` back to the canonical interval (``None`` for one-time prices)."""
    if not recurring:
        return None
    wanted = {"interval": recurring.get("interval"), "interval_count": int(recurring.get("interval_count") or 1)}
    return next((i for i, r in RECURRING.items() if r == wanted), None)


def subscription_item_record(sub: Mapping[str, Any], item: Mapping[str, Any]) -> BillingRecord | None:
    """A subscription item as a billing record keyed by its product code (``None`` if it has none)."""
    price = item.get("price") if isinstance(item.get("price"), Mapping) else {}
    code = (item.get("metadata") or {}).get(PRODUCT_KEY) or ((price or {}).get("metadata") or {}).get(PRODUCT_KEY)
    if not code or not price:
        return None
    currency = str(price["currency"]).upper()
    return BillingRecord(kind=BillingRecordKind.SUBSCRIPTION_ITEM, billing_id=str(item["id"]), product_code=code,
                         customer_id=_id(sub.get("customer")), subscription_id=str(sub["id"]),
                         price_id=str(price["id"]), product_id=_id(price.get("product")),
                         unit_amount=money(price.get("unit_amount"), currency),
                         quantity=Decimal(int(item.get("quantity") or 0)),
                         interval=interval_of(price.get("recurring")), status=str(sub.get("status") or ""))


def milestone_invoice_record(obj: Mapping[str, Any]) -> BillingRecord | None:
    """A one-off (milestone or fixed-fee) invoice as a billing record keyed by ``revops_milestone``."""
    code = (obj.get("metadata") or {}).get("revops_milestone")
    if not code:
        return None
    currency = str(obj["currency"]).upper()
    return BillingRecord(kind=BillingRecordKind.MILESTONE_INVOICE, billing_id=str(obj["id"]), product_code=code,
                         customer_id=_id(obj.get("customer")), unit_amount=money(obj.get("total"), currency),
                         quantity=Decimal(1), status=str(obj.get("status") or ""))


def rate_record(price: Mapping[str, Any]) -> BillingRecord | None:
    """A one-time rate-card price as a billing record keyed by its product code."""
    code = (price.get("metadata") or {}).get(PRODUCT_KEY)
    if not code or price.get("recurring"):
        return None
    currency = str(price["currency"]).upper()
    return BillingRecord(kind=BillingRecordKind.RATE, billing_id=str(price["id"]), product_code=code,
                         price_id=str(price["id"]), product_id=_id(price.get("product")),
                         unit_amount=money(price.get("unit_amount"), currency),
                         status="active" if price.get("active") else "inactive")


def address(obj: Mapping[str, Any] | None) -> Address | None:
    if not obj:
        return None
    return Address(line1=obj.get("line1"), line2=obj.get("line2"), city=obj.get("city"), region=obj.get("state"),
                   postal_code=obj.get("postal_code"), country=obj.get("country"))


def customer(obj: Mapping[str, Any]) -> Account:
    """A Stripe customer as a canonical account: ``crm_id`` from metadata ``crm_company_id``."""
    metadata = obj.get("metadata") or {}
    found = address(obj.get("address"))
    return Account(crm_id=metadata.get("crm_company_id") or None, name=str(obj.get("name") or obj["id"]),
                   country=found.country if found else None, address=found, billing_customer_id=str(obj["id"]),
                   created_by=metadata.get(CREATED_BY_KEY) or None)


def customer_legal_entity(obj: Mapping[str, Any]) -> str | None:
    """The legal entity a customer was created for (metadata ``legal_entity``)."""
    return (obj.get("metadata") or {}).get(ENTITY_KEY) or None
