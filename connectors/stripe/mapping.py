"""Stripe <-> canonical, one function per object and direction.

Amounts on the wire are integer minor units in lower-case currencies; canonical money is
``Money`` (Decimal, upper-case ISO code). Metadata keys the integration writes and reads:

* customers: ``revops_ref`` (the lookup reference), ``legal_entity``, ``crm_company_id``, ``crm_contact_id``,
  ``revops_created_by`` (the creating run's ownership mark, ``canonical.refs.ownership_marker``)
* prices, invoice items (and so invoice lines): ``revops_product_code``
* catalogue products and prices (``canonical.catalogue``): ``revops_sku`` (and ``revops_product_code``); the
  price's ``lookup_key`` is the catalogue key, the product's ID ``prod_sku_<sku>_<hash>``. A product a deal
  made for a SKU the catalogue lacks carries ``revops_uncatalogued``; a deal's own price under a catalogue
  product (its unit price is not the list price) carries ``revops_list_price`` (the catalogue key)
* subscriptions and one-off invoices: the schedule's own metadata plus ``revops_schedule_kind``
  (and ``revops_bill_on``/``revops_milestone`` on milestone invoices). An invoice's
  ``crm_deal_id`` is read from ``revops_deal_id`` (or ``crm_deal_id``), its ``legal_entity`` from
  ``legal_entity`` (or ``revops_legal_entity``, which quote-to-cash schedules set), looking at the
  invoice's metadata and then its subscription's (``subscription_details.metadata``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
from canonical.billing import TaxStatus
from canonical.catalogue import BillingPrice, CatalogueEntry, CatalogueItem
from canonical.matching import CustomerCandidate
from connectors.wire import NOT_MAPPED, Wire, blank, build, falsy, never, read

REF_KEY = "revops_ref"
CREATED_BY_KEY = "revops_created_by"
PRODUCT_KEY = "revops_product_code"
DEAL_KEYS = ("revops_deal_id", "crm_deal_id")
ENTITY_KEY = "legal_entity"
#: where an invoice's legal entity may be: our customers' key, then the one quote-to-cash schedules set
ENTITY_KEYS = (ENTITY_KEY, "revops_legal_entity")
PROJECT_KEY = "revops_project"
SKU_KEY = "revops_sku"
UNCATALOGUED_KEY = "revops_uncatalogued"
LIST_PRICE_KEY = "revops_list_price"
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
@dataclass(frozen=True)
class CustomerSource:
    """What a customer is made of: the account, its billing contact and our references."""

    account: Account
    contact: Contact | None
    reference: str
    legal_entity: str
    marker: str | None = None


def _meta(value: Any) -> str | None:
    """A metadata value as Stripe takes it (``clean_metadata``'s rule): text of 500 characters at most."""
    return None if blank(value) else str(value)[:500]


def _address_part(name: str) -> Callable[[CustomerSource], Any]:
    return lambda s: getattr(s.account.address, name) if s.account.address else None


#: ``POST /v1/customers``: an account with its billing contact
CUSTOMER_OUT: tuple[Wire[CustomerSource], ...] = (
    Wire("Account.name", "name", "text", lambda s: s.account.name, "account", omit=never),
    Wire("Contact.email", "email", "the billing contact's", lambda s: s.contact.email if s.contact else None,
         "contact", omit=never),
    Wire("Contact.phone", "phone", "the billing contact's", lambda s: s.contact.phone if s.contact else None,
         "contact", omit=never),
    Wire(NOT_MAPPED, "metadata", "", lambda _s: {}, documented=False),
    Wire("Account.crm_id", f"metadata.{REF_KEY}", "our reference `hubspot-company-<id>-<entity>` (search key)",
         lambda s: _meta(s.reference), "account"),
    Wire("BillingCustomer.legal_entity", f"metadata.{ENTITY_KEY}", "entity code",
         lambda s: _meta(s.legal_entity), "account"),
    Wire("Account.crm_id", "metadata.crm_company_id", "text", lambda s: _meta(s.account.crm_id), "account"),
    Wire("Account.created_by", f"metadata.{CREATED_BY_KEY}", "the creating run's ownership mark",
         lambda s: _meta(s.marker), "account"),
    Wire("Contact.crm_id", "metadata.crm_contact_id", "the billing contact's",
         lambda s: _meta(s.contact.crm_id if s.contact else None), "contact"),
    Wire("Contact.first_name", "metadata.billing_contact", "the billing contact's full name (first and last)",
         lambda s: _meta(s.contact.full_name if s.contact else None), "contact"),
    Wire(NOT_MAPPED, "address", "", lambda s: {} if s.account.address is not None or s.account.country else None,
         documented=False),
    Wire("Account.address.line1", "address.line1", "text", _address_part("line1"), "account", omit=falsy),
    Wire("Account.address.line2", "address.line2", "text", _address_part("line2"), "account", omit=falsy),
    Wire("Account.address.city", "address.city", "text", _address_part("city"), "account", omit=falsy),
    Wire("Account.address.region", "address.state", "text", _address_part("region"), "account", omit=falsy),
    Wire("Account.address.postal_code", "address.postal_code", "text", _address_part("postal_code"), "account",
         omit=falsy),
    Wire("Account.address.country", "address.country", "the address's, else the account's country",
         lambda s: (s.account.address.country if s.account.address and s.account.address.country
                    else s.account.country), "account", omit=falsy),
)


def candidate_from_stripe(obj: dict[str, Any]) -> CustomerCandidate:
    """A customer as a match candidate: ID, name, country of its address, email and our reference if any."""
    address = obj.get("address") or {}
    return CustomerCandidate(record_id=str(obj["id"]), name=str(obj.get("name") or ""),
                             country=address.get("country") or None, email=obj.get("email") or None,
                             reference=(obj.get("metadata") or {}).get(REF_KEY) or None)


def link_params(reference: str, legal_entity: str) -> dict[str, Any]:
    """``POST /v1/customers/{id}`` params that link a customer keyed by hand to our reference."""
    return {f"metadata[{REF_KEY}]": reference, f"metadata[{ENTITY_KEY}]": legal_entity}


def customer_params(account: Account, contact: Contact | None, *, reference: str,
                    legal_entity: str, marker: str | None = None) -> dict[str, Any]:
    """``POST /v1/customers`` params for an account (with its billing contact); ``marker`` is the creating
    run's ownership mark (metadata ``revops_created_by``)."""
    return build(CUSTOMER_OUT, CustomerSource(account, contact, reference, legal_entity, marker))


def unit_and_quantity(charge: ScheduledCharge) -> tuple[int, int]:
    """Stripe quantities and unit amounts are integers: a fractional quantity, or a discounted unit price
    with a fraction of a minor unit (its total is not unit x quantity), is folded into one line of the
    total (the contract and the ERP keep the seats)."""
    quantity, total = charge.quantity, charge.total()
    if quantity == quantity.to_integral_value() and charge.unit_amount.times(quantity) == total:
        return charge.unit_amount.to_minor(), int(quantity)
    return total.to_minor(), 1


@dataclass(frozen=True)
class PriceSource:
    """A scheduled charge with the product it is priced on and the schedule's metadata."""

    charge: ScheduledCharge
    metadata: Mapping[str, str]
    product_id: str = ""
    recurring: bool = False


def _charge_metadata(s: PriceSource) -> dict[str, str]:
    return clean_metadata({**s.metadata, PRODUCT_KEY: s.charge.product_code})


#: ``POST /v1/products``: the product a charge is priced on
PRODUCT_OUT: tuple[Wire[PriceSource], ...] = (
    Wire("ScheduledCharge.description", "name", "the description, else the product code",
         lambda s: s.charge.description or s.charge.product_code, "subscription", omit=never),
    Wire("ScheduledCharge.product_code", "metadata", f"the schedule's metadata with `{PRODUCT_KEY}`",
         _charge_metadata, "subscription", omit=never),
)

#: ``POST /v1/prices``: one charge's price (recurring for subscriptions and retainers)
PRICE_OUT: tuple[Wire[PriceSource], ...] = (
    Wire(NOT_MAPPED, "product", "the product created for the charge", lambda s: s.product_id,
         omit=never),
    Wire("ScheduledCharge.unit_amount", "currency", "lower-cased",
         lambda s: s.charge.unit_amount.currency.lower(), "subscription", omit=never),
    Wire("ScheduledCharge.unit_amount", "unit_amount",
         "minor units (a fractional quantity folds into one unit of the total)",
         lambda s: unit_and_quantity(s.charge)[0], "subscription", omit=never),
    Wire("ScheduledCharge.description", "nickname", "250 characters at most",
         lambda s: s.charge.description[:250] if s.charge.description else None, "subscription",
         omit=never),
    Wire("ScheduledCharge.product_code", "metadata", f"the schedule's metadata with `{PRODUCT_KEY}`",
         _charge_metadata, "subscription", omit=never),
    Wire("ScheduledCharge.interval", "recurring", "month / 3 months / year (recurring charges only)",
         lambda s: RECURRING[s.charge.interval or BillingInterval.MONTH] if s.recurring else None,
         "subscription"),
)


def catalogue_product_id(sku: str) -> str:
    """The product a SKU is sold under: one per SKU, its ID derived from the SKU so that a look-up is a GET and
    two creators racing meet on one ID (Stripe lets a product's ID be chosen)."""
    readable = re.sub(r"[^A-Za-z0-9]", "_", sku)[:40]
    return f"prod_sku_{readable}_{hashlib.sha256(sku.encode()).hexdigest()[:8]}"


def catalogue_product_params(item: CatalogueItem) -> dict[str, Any]:
    """``POST /v1/products`` for a catalogue SKU (no deal's metadata: every deal shares it)."""
    return {"id": catalogue_product_id(item.sku), "name": item.name[:250],
            "metadata": clean_metadata({SKU_KEY: item.sku, PRODUCT_KEY: item.sku})}


def catalogue_price_params(entry: CatalogueEntry, product_id: str) -> dict[str, Any]:
    """``POST /v1/prices`` for a catalogue price: its lookup key, recurring per its interval, one-time else."""
    params: dict[str, Any] = {
        "product": product_id, "currency": entry.unit_amount.currency.lower(),
        "unit_amount": entry.unit_amount.to_minor(), "lookup_key": entry.key,
        "nickname": f"{entry.name} ({'hourly' if entry.hourly else entry.interval or 'one-off'})"[:250],
        "metadata": clean_metadata({SKU_KEY: entry.sku, PRODUCT_KEY: entry.sku}),
    }
    if entry.interval is not None:
        params["recurring"] = RECURRING[entry.interval]
    return params


def billing_price(price: Mapping[str, Any], product: Mapping[str, Any] | None) -> BillingPrice:
    """A Stripe price (and its product, when read) as the catalogue sees it."""
    product_meta = (product or {}).get("metadata") or {}
    price_meta = price.get("metadata") or {}
    uncatalogued = product_meta.get(UNCATALOGUED_KEY)
    return BillingPrice(
        price_id=str(price["id"]), product_id=_id(price.get("product")) or "", key=price.get("lookup_key") or None,
        sku=price_meta.get(SKU_KEY) or uncatalogued or price_meta.get(PRODUCT_KEY) or None,
        unit_amount=money(price.get("unit_amount"), str(price["currency"]).upper()),
        interval=interval_of(price.get("recurring")), active=bool(price.get("active", True)),
        product_active=bool((product or {}).get("active", True)), uncatalogued=bool(uncatalogued),
        deal_id=price_meta.get("revops_deal_id") or None)


def product_params(charge: ScheduledCharge, metadata: Mapping[str, str]) -> dict[str, Any]:
    return build(PRODUCT_OUT, PriceSource(charge, metadata))


def price_params(charge: ScheduledCharge, product_id: str, *, recurring: bool,
                 metadata: Mapping[str, str]) -> dict[str, Any]:
    return build(PRICE_OUT, PriceSource(charge, metadata, product_id, recurring))


def _enum_reason(note: CreditNote) -> str | None:
    reason = (note.reason or "").strip()
    return reason if reason in CREDIT_NOTE_REASONS else None


def _memo(note: CreditNote) -> str | None:
    reason = (note.reason or "").strip()
    return reason if reason and _enum_reason(note) is None else None


#: ``POST /v1/credit_notes``. Stripe's ``reason`` is an enum; any other reason text travels as the memo.
CREDIT_NOTE_OUT: tuple[Wire[CreditNote], ...] = (
    Wire("CreditNote.invoice_billing_id", "invoice", "ID", lambda n: n.invoice_billing_id, "credit_note",
         omit=never),
    Wire("CreditNote.amount", "amount", "Decimal → minor units", lambda n: n.amount.to_minor(), "credit_note",
         omit=never),
    Wire("CreditNote.reason", "reason", "one of Stripe's reasons, else none", _enum_reason, "credit_note",
         omit=never),
    Wire("CreditNote.reason", "memo", "any other reason text", _memo, "credit_note", omit=never),
    Wire("CreditNote.billing_id", "metadata", "our credit note reference (`revops_credit_note_ref`)",
         lambda n: clean_metadata({"revops_credit_note_ref": n.billing_id or None}), "credit_note",
         omit=never),
)


def credit_note_params(note: CreditNote) -> dict[str, Any]:
    return build(CREDIT_NOTE_OUT, note)


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


#: Stripe's ``customer_tax_exempt`` as the customer's tax status
_TAX_STATUS = {"none": TaxStatus.TAXABLE, "exempt": TaxStatus.EXEMPT, "reverse": TaxStatus.REVERSE_CHARGE}


@dataclass(frozen=True)
class InvoiceDoc:
    """A Stripe invoice with what its fields are read in terms of: currency, merged metadata, every line."""

    obj: Mapping[str, Any]
    currency: str
    metadata: dict[str, str]
    lines: list[Mapping[str, Any]]
    complete: bool

    def money(self, key: str) -> Money:
        return money(self.obj.get(key), self.currency)


def _tax_units(obj: Mapping[str, Any]) -> int:
    tax_units = obj.get("tax")
    if tax_units is None:
        tax_units = sum(int(t.get("amount") or 0) for t in obj.get("total_tax_amounts") or [])
    return int(tax_units or 0)


def _first(metadata: Mapping[str, str], keys: Sequence[str]) -> str | None:
    return next((metadata[k] for k in keys if metadata.get(k)), None)


#: a Stripe invoice (``invoice.*`` events, ``GET /v1/invoices``) as a canonical invoice
INVOICE_IN: tuple[Wire[InvoiceDoc], ...] = (
    Wire("Invoice.billing_id", "id", "as is", lambda d: str(d.obj["id"]), "invoice"),
    Wire("Invoice.number", "number", "as is", lambda d: d.obj.get("number"), "invoice"),
    Wire("Invoice.customer_id", "customer", "ID of an expanded or bare reference",
         lambda d: _id(d.obj.get("customer")) or "", "invoice"),
    Wire("Invoice.currency", "currency", "upper-cased", lambda d: d.currency, "invoice"),
    Wire("Invoice.status", "status", "draft/open/paid/void/uncollectible",
         lambda d: InvoiceStatus(d.obj.get("status") or "draft"), "invoice"),
    Wire("Invoice.issued_on", "status_transitions.finalized_at", "epoch seconds → date (UTC)",
         lambda d: _date((d.obj.get("status_transitions") or {}).get("finalized_at")), "invoice"),
    Wire("Invoice.due_on", "due_date", "epoch seconds → date (UTC)", lambda d: _date(d.obj.get("due_date")),
         "invoice"),
    Wire("Invoice.lines", "lines.data", "quantity, unit amount, tax amounts, product code (and the lines "
         "read from `/v1/invoices/{id}/lines` when `has_more`)",
         lambda d: [invoice_line(line, d.currency) for line in d.lines], "invoice"),
    Wire("Invoice.lines_complete", "lines.has_more", "false when more lines exist and were not read",
         lambda d: d.complete, "invoice"),
    Wire("Invoice.subtotal", "subtotal", "minor units → Decimal in the currency", lambda d: d.money("subtotal"),
         "invoice"),
    Wire("Invoice.tax", "tax", "minor units; sum of total_tax_amounts when absent",
         lambda d: money(_tax_units(d.obj), d.currency), "invoice"),
    Wire("Invoice.total", "total", "minor units → Decimal", lambda d: d.money("total"), "invoice"),
    Wire("Invoice.amount_paid", "amount_paid", "minor units → Decimal", lambda d: d.money("amount_paid"),
         "invoice"),
    Wire("Invoice.amount_due", "amount_remaining", "minor units → Decimal (still owed)",
         lambda d: d.money("amount_remaining"), "invoice"),
    Wire("Invoice.crm_deal_id", " or ".join(f"metadata.{k}" for k in DEAL_KEYS),
         "first present (invoice metadata over the subscription's)", lambda d: _first(d.metadata, DEAL_KEYS),
         "invoice"),
    Wire("Invoice.legal_entity", " or ".join(f"metadata.{k}" for k in ENTITY_KEYS),
         "first present (invoice metadata over the subscription's)", lambda d: _first(d.metadata, ENTITY_KEYS),
         "invoice"),
    Wire("Invoice.customer_tax_status", "customer_tax_exempt", "none → taxable, exempt → exempt, reverse → "
         "reverse_charge", lambda d: _TAX_STATUS.get(str(d.obj.get("customer_tax_exempt") or "none"),
                                                     TaxStatus.TAXABLE), "invoice"),
    Wire("Invoice.customer_country", "customer_address.country", "ISO 3166-1 alpha-2, upper-cased",
         lambda d: (str((d.obj.get("customer_address") or {}).get("country") or "").upper() or None), "invoice"),
    Wire("Invoice.metadata", "metadata", "invoice metadata over the subscription's "
         "(`subscription_details.metadata`)", lambda d: d.metadata, "invoice"),
    Wire("Invoice.payment_ids", "charge", "the charge, once something was paid",
         lambda d: [c for c in [_id(d.obj.get("charge"))] if c and int(d.obj.get("amount_paid") or 0) > 0],
         "invoice"),
)


def invoice(obj: Mapping[str, Any], *, more_lines: Sequence[Mapping[str, Any]] | None = None) -> Invoice:
    """A Stripe invoice as canonical. ``amount_due`` is what is still owed (Stripe's ``amount_remaining``).

    Stripe embeds only the first lines (``lines.has_more``); ``more_lines`` are the rest, read from
    ``GET /v1/invoices/{id}/lines``. Without them such an invoice is ``lines_complete=False``.
    """
    embedded = obj.get("lines") if isinstance(obj.get("lines"), Mapping) else None
    lines = [*((embedded or {}).get("data") or []), *(more_lines or [])]
    complete = embedded is not None and (not embedded.get("has_more") or more_lines is not None)
    if "amount_remaining" not in obj:
        raise KeyError("amount_remaining")
    doc = InvoiceDoc(obj, str(obj["currency"]).upper(), invoice_metadata(obj), lines, complete)
    return Invoice(**read(INVOICE_IN, doc))


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


#: a Stripe credit note (``credit_note.*`` events) as canonical
CREDIT_NOTE_IN: tuple[Wire[Mapping[str, Any]], ...] = (
    Wire("CreditNote.billing_id", "id", "as is", lambda o: str(o["id"]), "credit_note"),
    Wire("CreditNote.invoice_billing_id", "invoice", "ID of an expanded or bare reference",
         lambda o: _id(o.get("invoice")) or "", "credit_note"),
    Wire("CreditNote.amount", "total", "minor units → Decimal (`amount` when no total)",
         lambda o: money(o.get("total", o.get("amount")), str(o["currency"]).upper()), "credit_note"),
    Wire("CreditNote.reason", "reason", "the reason, else the memo", lambda o: o.get("reason") or o.get("memo"),
         "credit_note"),
    Wire("CreditNote.issued_at", "effective_at", "epoch seconds (else `created`) → UTC moment",
         lambda o: datetime.fromtimestamp(int(o.get("effective_at") or o["created"]), tz=UTC), "credit_note"),
    Wire("CreditNote.before_payment", "type", "`pre_payment` → True, `post_payment` → False, else None",
         lambda o: {"pre_payment": True, "post_payment": False}.get(str(o.get("type"))), "credit_note"),
)


def credit_note(obj: Mapping[str, Any]) -> CreditNote:
    return CreditNote(**read(CREDIT_NOTE_IN, obj))


def interval_of(recurring: Mapping[str, Any] | None) -> BillingInterval | None:
    """Stripe ``recurring`` back to the canonical interval (``None`` for one-time prices)."""
    if not recurring:
        return None
    wanted = {"interval": recurring.get("interval"), "interval_count": int(recurring.get("interval_count") or 1)}
    return next((i for i, r in RECURRING.items() if r == wanted), None)


def _item_code(pair: tuple[Mapping[str, Any], Mapping[str, Any]]) -> str | None:
    _sub, item = pair
    price = item.get("price") if isinstance(item.get("price"), Mapping) else {}
    return (item.get("metadata") or {}).get(PRODUCT_KEY) or ((price or {}).get("metadata") or {}).get(PRODUCT_KEY)


def _item_price(pair: tuple[Mapping[str, Any], Mapping[str, Any]]) -> Mapping[str, Any]:
    price = pair[1].get("price")
    return price if isinstance(price, Mapping) else {}


#: a subscription item (with its subscription) read back as a billing record (amendments, reconciliation)
SUBSCRIPTION_ITEM_IN: tuple[Wire[tuple[Mapping[str, Any], Mapping[str, Any]]], ...] = (
    Wire("BillingRecord.billing_id", "items.data[].id", "as is", lambda p: str(p[1]["id"]), "subscription"),
    Wire("BillingRecord.product_code", f"items.data[].metadata.{PRODUCT_KEY}",
         "the item's product code, else its price's", _item_code, "subscription"),
    Wire("BillingRecord.customer_id", "customer", "ID of an expanded or bare reference",
         lambda p: _id(p[0].get("customer")), "subscription"),
    Wire("BillingRecord.subscription_id", "id", "as is", lambda p: str(p[0]["id"]), "subscription"),
    Wire("BillingRecord.price_id", "items.data[].price.id", "as is", lambda p: str(_item_price(p)["id"]),
         "subscription"),
    Wire("BillingRecord.product_id", "items.data[].price.product", "ID of an expanded or bare reference",
         lambda p: _id(_item_price(p).get("product")), "subscription"),
    Wire("BillingRecord.unit_amount", "items.data[].price.unit_amount", "minor units → Decimal, in the price's "
         "currency", lambda p: money(_item_price(p).get("unit_amount"), str(_item_price(p)["currency"]).upper()),
         "subscription"),
    Wire("BillingRecord.quantity", "items.data[].quantity", "integer → Decimal",
         lambda p: Decimal(int(p[1].get("quantity") or 0)), "subscription"),
    Wire("BillingRecord.interval", "items.data[].price.recurring", "interval and count → billing interval",
         lambda p: interval_of(_item_price(p).get("recurring")), "subscription"),
    Wire("BillingRecord.status", "status", "the subscription's status", lambda p: str(p[0].get("status") or ""),
         "subscription"),
)

#: a one-off (milestone or fixed-fee) invoice read back as a billing record
MILESTONE_INVOICE_IN: tuple[Wire[Mapping[str, Any]], ...] = (
    Wire("BillingRecord.billing_id", "id", "as is", lambda o: str(o["id"]), "invoice"),
    Wire("BillingRecord.product_code", "metadata.revops_milestone", "the milestone's code",
         lambda o: (o.get("metadata") or {}).get("revops_milestone"), "invoice"),
    Wire("BillingRecord.customer_id", "customer", "ID of an expanded or bare reference",
         lambda o: _id(o.get("customer")), "invoice"),
    Wire("BillingRecord.unit_amount", "total", "minor units → Decimal",
         lambda o: money(o.get("total"), str(o["currency"]).upper()), "invoice"),
    Wire("BillingRecord.quantity", NOT_MAPPED, "always 1", lambda o: Decimal(1), "invoice"),
    Wire("BillingRecord.status", "status", "the invoice's status", lambda o: str(o.get("status") or ""), "invoice"),
)

#: a one-time rate-card price (time and materials) read back as a billing record
RATE_IN: tuple[Wire[Mapping[str, Any]], ...] = (
    Wire("BillingRecord.billing_id", "id", "as is", lambda o: str(o["id"]), "subscription"),
    Wire("BillingRecord.product_code", f"metadata.{PRODUCT_KEY}", "the role's product code",
         lambda o: (o.get("metadata") or {}).get(PRODUCT_KEY), "subscription"),
    Wire("BillingRecord.price_id", "id", "as is", lambda o: str(o["id"]), "subscription"),
    Wire("BillingRecord.product_id", "product", "ID of an expanded or bare reference",
         lambda o: _id(o.get("product")), "subscription"),
    Wire("BillingRecord.unit_amount", "unit_amount", "minor units → Decimal",
         lambda o: money(o.get("unit_amount"), str(o["currency"]).upper()), "subscription"),
    Wire("BillingRecord.status", "active", "true → active, false → inactive",
         lambda o: "active" if o.get("active") else "inactive", "subscription"),
)


def subscription_item_record(sub: Mapping[str, Any], item: Mapping[str, Any]) -> BillingRecord | None:
    """A subscription item as a billing record keyed by its product code (``None`` if it has none)."""
    pair = (sub, item)
    if not _item_code(pair) or not _item_price(pair):
        return None
    return BillingRecord(kind=BillingRecordKind.SUBSCRIPTION_ITEM, **read(SUBSCRIPTION_ITEM_IN, pair))


def milestone_invoice_record(obj: Mapping[str, Any]) -> BillingRecord | None:
    """A one-off (milestone or fixed-fee) invoice as a billing record keyed by ``revops_milestone``."""
    if not (obj.get("metadata") or {}).get("revops_milestone"):
        return None
    return BillingRecord(kind=BillingRecordKind.MILESTONE_INVOICE, **read(MILESTONE_INVOICE_IN, obj))


def rate_record(price: Mapping[str, Any]) -> BillingRecord | None:
    """A one-time rate-card price as a billing record keyed by its product code."""
    if not (price.get("metadata") or {}).get(PRODUCT_KEY) or price.get("recurring"):
        return None
    return BillingRecord(kind=BillingRecordKind.RATE, **read(RATE_IN, price))


def address(obj: Mapping[str, Any] | None) -> Address | None:
    if not obj:
        return None
    return Address(line1=obj.get("line1"), line2=obj.get("line2"), city=obj.get("city"), region=obj.get("state"),
                   postal_code=obj.get("postal_code"), country=obj.get("country"))


_NO = Address()

#: a Stripe customer as a canonical account
CUSTOMER_IN: tuple[Wire[Mapping[str, Any]], ...] = (
    Wire("Account.crm_id", "metadata.crm_company_id", "text",
         lambda o: (o.get("metadata") or {}).get("crm_company_id") or None, "account"),
    Wire("Account.name", "name", "text (the ID when unnamed)", lambda o: str(o.get("name") or o["id"]), "account"),
    Wire("Account.country", "address.country", "ISO country", lambda o: (address(o.get("address")) or _NO).country,
         "account"),
    Wire("Account.address", "address", "line1/line2/city/state/postal_code/country",
         lambda o: address(o.get("address")), "account"),
    Wire("Account.billing_customer_id", "id", "as is", lambda o: str(o["id"]), "account"),
    Wire("Account.created_by", f"metadata.{CREATED_BY_KEY}", "the creating run's ownership mark",
         lambda o: (o.get("metadata") or {}).get(CREATED_BY_KEY) or None, "account"),
)
def customer(obj: Mapping[str, Any]) -> Account:
    """A Stripe customer as a canonical account: ``crm_id`` from metadata ``crm_company_id``."""
    return Account(**read(CUSTOMER_IN, obj))


def customer_legal_entity(obj: Mapping[str, Any]) -> str | None:
    """The legal entity a customer was created for (metadata ``legal_entity``)."""
    return (obj.get("metadata") or {}).get(ENTITY_KEY) or None
