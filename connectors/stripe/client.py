"""``StripeBilling``: the billing port over Stripe's REST API (``Stripe-Version: 2023-08-16``).

Every request carries ``Authorization: Bearer <key>`` and the pinned version; bodies are Stripe's
bracket-encoded forms (``connectors.stripe.form``). Every POST carries ``Idempotency-Key``: the
port call's key, suffixed per sub-step when one call makes several objects
(``<key>:product:<i>:<code>``), so retrying a whole port call creates nothing twice.

How schedules land in Stripe (``create_schedule``):

* SUBSCRIPTION, RETAINER: a product and a recurring price per charge, then one subscription with
  ``collection_method=send_invoice`` and ``days_until_due``. Start date: today -> none; in the past
  -> ``backdate_start_date``; in the future -> ``trial_end`` at that date (with
  ``proration_behavior=none``): Stripe's way to start billing on any later date (a
  ``billing_cycle_anchor`` may not lie beyond the first natural period). ``end_date`` ->
  ``cancel_at``. Recurring charges must share one interval (Stripe's rule; otherwise ``Rejected``).
  ``billing_id`` = the subscription, ``item_ids`` = its products and prices.
* MILESTONE, FIXED_FEE: per charge a draft invoice (``auto_advance=false``, ``send_invoice``,
  ``due_date`` = ``bill_on`` + ``days_until_due`` when that is still ahead, else ``days_until_due``
  (``due_terms``: Stripe refuses a past ``due_date``), metadata
  ``revops_bill_on``/``revops_milestone``) holding one invoice item; a later flow finalizes it
  (``finalize_invoice``) when it falls due or the milestone is accepted. ``item_ids`` = invoice and
  invoice item IDs, ``billing_id`` = None.
* TIME_AND_MATERIALS: a product and a one-time price per rate-card role; nothing billed yet.
  ``item_ids`` = those products and prices.

The product catalogue (``canonical.catalogue``, ``CATALOGUE``): a catalogued SKU is sold under one product
(ID ``prod_sku_<sku>_<hash>``) and each of its list prices is one price under the catalogue's lookup key
(``<sku>:<currency>:<interval>``), found with ``GET /v1/prices?lookup_keys[]=`` and created once (idempotency
key ``catalogue:price:<key>:<amount>``). A recurring charge at the list price reuses it; at another unit price
(a discount) it gets a price of its own under that product, marked ``revops_list_price``: Stripe's coupons
(2023-08-16: per subscription, not per item) would round the discount on the invoice rather than on the line
as the contract does. Rate-card (time and materials) prices stay the project's own under the SKU's product,
since reconciliation reads rates per project. A SKU the catalogue lacks is priced as before, with a product
of the deal's own marked ``revops_uncatalogued`` (``starter.py catalogue sync`` names it). Shared catalogue
objects are never in a schedule's ``item_ids``, so compensation and amendments never retire them.

``cancel_schedule`` undoes by ID prefix and is safe to repeat: a thing already gone is success.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from canonical import (
    Account,
    BillingSchedule,
    BillingScheduleKind,
    Contact,
    CreditNote,
    DomainEvent,
    Invoice,
    ScheduledCharge,
)
from canonical.amendments import BillingRecord, SubscriptionItemChange
from canonical.billing import OneOffInvoice
from canonical.catalogue import BillingPrice, Catalogue, CatalogueEntry, CatalogueItem, price_key
from canonical.ledger import BillingCustomer
from canonical.matching import CustomerCandidate, account_domains, normalise_name
from canonical.money import Money
from canonical.reconciliation import BillingChange
from canonical.refs import ownership_marker, ref
from canonical.time_billing import BilledTime, TimeBill, TimeInvoice
from connectors.errors import Conflict, ConnectorError, NotFound, PayloadInvalid, Rejected
from connectors.http import build_client, parse_retry_after, send
from connectors.identifiers import PREFIXED_ID, segment
from connectors.stripe import mapping
from connectors.stripe.events import API_VERSION, TYPES, domain_events
from connectors.stripe.form import encode_form, unix_midnight
from connectors.stripe.spec import StripeSettings, stripe_ref
from settings import Settings

VENDOR = "stripe"
log = logging.getLogger("revops.connectors")


def _quoted(text: str) -> str:
    """``text`` inside single quotes of Stripe's search language."""
    return text.replace("\\", "\\\\").replace("'", "\\'")
TIME_ENTRY_KEY = "revops_time_entry"  # an invoice item's time entry (the project system's ID): billed once


def _id(value: str | None) -> str:
    """A Stripe object ID (``prefix_…``), quoted for a path; ``InvalidIdentifier`` otherwise."""
    return segment(value, "Stripe ID", PREFIXED_ID, vendor=VENDOR)
PAGE_SIZE = 100
MAX_PAGES = 10_000  # a bound on cursor loops: a million invoices per call is far beyond any account


def _refs(ids: list[str]) -> list[str]:
    """``stripe:<object>:<id>`` of each created record (the prefix tells Stripe's object)."""
    return [stripe_ref(i) for i in ids]


class _StripeErrorBody:
    """Reads Stripe's ``{"error": {...}}``; remembers the type so an idempotency refusal is a Conflict."""

    def __init__(self) -> None:
        self.type: str | None = None
        self.code: str | None = None

    def __call__(self, response: httpx.Response) -> str:
        error = response.json().get("error") or {}
        self.type, self.code = error.get("type"), error.get("code")
        message = str(error.get("message") or response.reason_phrase)
        return f"{message} (param: {error['param']})" if error.get("param") else message


def _retry_after(response: httpx.Response) -> float | None:
    # Stripe documents no Retry-After; its SDKs read Stripe-Should-Retry. We honour Retry-After when
    # present (the sandbox sends it) and otherwise leave the wait to the activity's backoff.
    return parse_retry_after(response.headers.get("Retry-After"))


def due_terms(bill_on: date | None, days_until_due: int, now: datetime) -> dict[str, int]:
    """When a one-off invoice falls due, as Stripe accepts it: ``due_date`` = bill date + payment terms
    while that is still ahead (the contract's date), else ``days_until_due`` (the terms counted from when
    the invoice is issued). Stripe refuses a ``due_date`` that is not in the future, and a contract signed
    after its start, or on net-0 terms, would otherwise ask for one."""
    if bill_on is not None:
        due = unix_midnight(bill_on + timedelta(days=days_until_due))
        if due > now.timestamp():
            return {"due_date": due}
    return {"days_until_due": days_until_due}


class StripeBilling:
    """The ``BillingPort`` for Stripe."""

    vendor = VENDOR

    def __init__(self, client: httpx.AsyncClient, *, page_size: int = PAGE_SIZE,
                 proration_behavior: str = "create_prorations", catalogue: Catalogue | None = None) -> None:
        self._client = client
        self.catalogue = catalogue or Catalogue()  # SKUs sold under one product and their list prices
        self.page_size = page_size  # invoices per list page (Stripe allows 1-100)
        #: how a prorated change prorates (``create_prorations`` or ``always_invoice``)
        self.proration_behavior = proration_behavior

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- transport ---------------------------------------------------------------------------------
    async def _call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    form: Mapping[str, Any] | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
        headers: dict[str, str] = {}
        kwargs: dict[str, Any] = {}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            kwargs["content"] = encode_form(form)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if params:
            kwargs["params"] = {k: str(v) for k, v in params.items() if v is not None}
        reader = _StripeErrorBody()
        try:
            response = await send(self._client, method, path, vendor=VENDOR, error_message=reader,
                                  retry_after=_retry_after, headers=headers, **kwargs)
        except Rejected as exc:
            if reader.type == "idempotency_error":
                raise Conflict(exc.message, vendor=VENDOR, status=exc.status) from exc
            raise
        try:
            body = response.json()
        except ValueError as exc:
            raise Rejected(f"{method} {path}: response is not JSON", vendor=VENDOR,
                           status=response.status_code) from exc
        if not isinstance(body, dict):
            raise Rejected(f"{method} {path}: unexpected response shape", vendor=VENDOR)
        return body

    async def _gone_ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        """A call whose ``NotFound`` means the work is already done (compensation)."""
        try:
            return await self._call(method, path, **kwargs)
        except NotFound:
            return None

    # -- customers ---------------------------------------------------------------------------------
    async def find_customer(self, reference: str) -> str | None:
        """The live customer whose ``metadata['revops_ref']`` is ``reference``, if any.

        Stripe's search is eventually consistent (about a minute): a create retried with the same
        idempotency key is covered by the key; a new key within that minute may miss the record.
        """
        escaped = _quoted(reference)
        found = await self._call("GET", "/v1/customers/search",
                                 params={"query": f"metadata['{mapping.REF_KEY}']:'{escaped}'", "limit": 10})
        for obj in found.get("data") or []:
            if not obj.get("deleted") and (obj.get("metadata") or {}).get(mapping.REF_KEY) == reference:
                return str(obj["id"])
        return None

    async def ensure_customer(self, account: Account, *, contact: Contact | None, reference: str,
                              legal_entity: str, idempotency_key: str) -> str:
        """Find the customer by ``reference`` or create it; returns the ``cus_`` ID."""
        if existing := await self.find_customer(reference):
            return existing
        params = mapping.customer_params(account, contact, reference=reference, legal_entity=legal_entity,
                                         marker=ownership_marker(idempotency_key))
        created = await self._call("POST", "/v1/customers", form=params, idempotency_key=idempotency_key)
        return str(created["id"])

    async def customer_candidates(self, account: Account, *, email: str | None = None) -> list[CustomerCandidate]:
        """One search (``name~'core' OR email~'@domain'``; Stripe's substring match), live customers only."""
        clauses = []
        core = normalise_name(account.name)
        if len(core) >= 3:  # Stripe's substring match needs three characters
            clauses.append(f"name~'{_quoted(core)}'")
        clauses += [f"email~'{_quoted('@' + d)}'" for d in sorted(account_domains(account, email))]
        if not clauses:
            return []
        found = await self._call("GET", "/v1/customers/search", params={"query": " OR ".join(clauses), "limit": 50})
        return [mapping.candidate_from_stripe(obj) for obj in found.get("data") or [] if not obj.get("deleted")]

    async def link_customer(self, customer_id: str, *, reference: str, legal_entity: str,
                            idempotency_key: str) -> str:
        """Our reference and the legal entity into the customer's metadata; nothing else of it changes."""
        updated = await self._call("POST", f"/v1/customers/{_id(customer_id)}",
                                   form=mapping.link_params(reference, legal_entity), idempotency_key=idempotency_key)
        return str(updated["id"])

    async def delete_customer(self, customer_id: str) -> None:
        """Delete the customer (already deleted is fine)."""
        await self._gone_ok("DELETE", f"/v1/customers/{_id(customer_id)}")

    # -- schedules ---------------------------------------------------------------------------------
    async def create_schedule(self, schedule: BillingSchedule, *, idempotency_key: str) -> BillingSchedule:
        """Create what the schedule describes (see the module docstring); returns it with Stripe's IDs."""
        if not schedule.charges:
            raise Rejected("a billing schedule needs at least one charge", vendor=VENDOR)
        kind = schedule.kind
        created: list[str] = []
        try:
            if kind in (BillingScheduleKind.SUBSCRIPTION, BillingScheduleKind.RETAINER):
                return await self._create_subscription(schedule, idempotency_key, created)
            if kind in (BillingScheduleKind.MILESTONE, BillingScheduleKind.FIXED_FEE):
                return await self._create_one_off_invoices(schedule, idempotency_key, created)
            return await self._create_rate_card(schedule, idempotency_key, created)
        except (Rejected, NotFound, Conflict):
            # Refused for good part-way: undo this call's own creations so nothing is left orphaned.
            # (A transient failure is left alone: its retry resumes with the same idempotency keys.)
            await self.cancel_schedule(schedule.model_copy(update={"billing_id": None, "item_ids": created}),
                                       idempotency_key=f"{idempotency_key}:rollback")
            raise

    def _metadata(self, schedule: BillingSchedule, **extra: Any) -> dict[str, str]:
        return mapping.clean_metadata({**schedule.metadata, "revops_schedule_kind": schedule.kind.value, **extra})

    async def _product_and_price(self, schedule: BillingSchedule, key: str, index: int, *,
                                 recurring: bool, created: list[str]) -> tuple[list[str], str]:
        """The price a charge is billed at, and the IDs this schedule owns (what ``cancel_schedule`` undoes).

        A catalogued SKU (see the module docstring) is sold under its one product: a recurring charge at the
        list price reuses the catalogue price (found by lookup key, made once when missing), owning nothing;
        a charge at any other unit price (a discount), and every rate-card price (reconciliation reads those
        per project), get a price of the deal's own under that product. A SKU the catalogue lacks gets a
        product and price of the deal's own, as before the catalogue, marked ``revops_uncatalogued`` so that
        ``catalogue sync`` names it."""
        charge = schedule.charges[index]
        step = f"{index}:{charge.product_code}"
        metadata = self._metadata(schedule)
        item = self.catalogue.item(charge.product_code)
        if item is None:
            product = await self._call("POST", "/v1/products", form=mapping.product_params(
                charge, {**metadata, mapping.UNCATALOGUED_KEY: charge.product_code}),
                idempotency_key=f"{key}:product:{step}")
            created.append(str(product["id"]))
            product_id, owned = str(product["id"]), [str(product["id"])]
        else:
            product_id, owned = await self._catalogue_product(item), []
            listed = self.catalogue.price(item.sku, charge.unit_amount.currency, charge.interval) if recurring \
                else None
            if listed is not None and mapping.unit_and_quantity(charge)[0] == listed.money().to_minor():
                entry = next(e for e in self.catalogue.entries()
                             if e.key == price_key(item.sku, listed.currency, listed.interval))
                held = await self._catalogue_price(item, entry)
                if _is_entry(held, entry):
                    return owned, str(held["id"])
                # billing's price under the key was changed or archived by hand (catalogue sync reports it):
                # bill this deal at the contract's price, never at whatever the key now holds
            if listed is not None:
                metadata = {**metadata, mapping.LIST_PRICE_KEY: price_key(item.sku, listed.currency,
                                                                          listed.interval)}
        price = await self._call("POST", "/v1/prices",
                                 form=mapping.price_params(charge, product_id, recurring=recurring,
                                                           metadata=metadata),
                                 idempotency_key=f"{key}:price:{step}")
        created.append(str(price["id"]))
        return [*owned, str(price["id"])], str(price["id"])

    # -- the product catalogue ---------------------------------------------------------------------
    async def _catalogue_product(self, item: CatalogueItem) -> str:
        """The SKU's product: read by its derived ID, created when missing (a racing creator's is taken)."""
        product_id = mapping.catalogue_product_id(item.sku)
        if await self._gone_ok("GET", f"/v1/products/{_id(product_id)}") is not None:
            return product_id
        try:
            await self._call("POST", "/v1/products", form=mapping.catalogue_product_params(item),
                             idempotency_key=f"catalogue:product:{item.sku}")
        except Rejected:
            if await self._gone_ok("GET", f"/v1/products/{_id(product_id)}") is None:
                raise
        return product_id

    async def _price_by_key(self, key: str) -> dict[str, Any] | None:
        found = await self._call("GET", "/v1/prices", params={"lookup_keys[]": key, "limit": 1})
        data = found.get("data") or []
        return data[0] if data else None

    async def ensure_catalogue_price(self, item: CatalogueItem, entry: CatalogueEntry) -> str:
        """The price under ``entry``'s lookup key, else product and price made once: the idempotency key is the
        lookup key with the amount, so deals racing make one price (Stripe also lets one price hold a key)."""
        return str((await self._catalogue_price(item, entry))["id"])

    async def _catalogue_price(self, item: CatalogueItem, entry: CatalogueEntry) -> dict[str, Any]:
        if (held := await self._price_by_key(entry.key)) is not None:
            return held
        product_id = await self._catalogue_product(item)
        try:
            return await self._call("POST", "/v1/prices", form=mapping.catalogue_price_params(entry, product_id),
                                    idempotency_key=f"catalogue:price:{entry.key}:{entry.unit_amount.to_minor()}")
        except Rejected:
            if (held := await self._price_by_key(entry.key)) is None:
                raise
            return held

    async def catalogue_prices(self) -> list[BillingPrice]:
        """Every price under a lookup key, and every active price of a product a deal made without the
        catalogue (``revops_uncatalogued``), with its product."""
        products = {str(p["id"]): p async for p in self._list_all("/v1/products", {})}
        held: list[BillingPrice] = []
        async for price in self._list_all("/v1/prices", {}):
            product = products.get(mapping._id(price.get("product")) or "")
            marked = ((product or {}).get("metadata") or {}).get(mapping.UNCATALOGUED_KEY)
            if price.get("lookup_key") or (marked and price.get("active")):
                held.append(mapping.billing_price(price, product))
        return held

    async def _create_subscription(self, schedule: BillingSchedule, key: str, created: list[str]
                                   ) -> BillingSchedule:
        item_ids: list[str] = []
        items: list[dict[str, Any]] = []
        for index, charge in enumerate(schedule.charges):
            if charge.interval is None:
                raise Rejected(f"recurring charge {charge.product_code} has no interval", vendor=VENDOR)
            owned, price_id = await self._product_and_price(schedule, key, index, recurring=True,
                                                            created=created)
            item_ids += owned
            _unit, quantity = mapping.unit_and_quantity(charge)
            items.append({"price": price_id, "quantity": quantity,
                          "metadata": {mapping.PRODUCT_KEY: charge.product_code}})
        params: dict[str, Any] = {
            "customer": schedule.customer_id, "items": items, "collection_method": "send_invoice",
            "days_until_due": schedule.days_until_due, "metadata": self._metadata(schedule),
        }
        today = datetime.now(UTC).date()
        if schedule.start_date > today:
            params["trial_end"] = unix_midnight(schedule.start_date)
            params["proration_behavior"] = "none"
        elif schedule.start_date < today:
            params["backdate_start_date"] = unix_midnight(schedule.start_date)
        if schedule.end_date is not None and schedule.end_date > today:
            params["cancel_at"] = unix_midnight(schedule.end_date)
        subscription = await self._call("POST", "/v1/subscriptions", form=params,
                                        idempotency_key=f"{key}:subscription")
        return schedule.model_copy(update={"billing_id": str(subscription["id"]), "item_ids": item_ids,
                                           "refs": [ref(VENDOR, "subscription", str(subscription["id"])),
                                                    *_refs(item_ids)]})

    async def _create_one_off_invoices(self, schedule: BillingSchedule, key: str, created: list[str]
                                       ) -> BillingSchedule:
        item_ids: list[str] = []
        drafts: list[OneOffInvoice] = []
        for index, charge in enumerate(schedule.charges):
            step = f"{index}:{charge.product_code}"
            invoice_params: dict[str, Any] = {
                "customer": schedule.customer_id, "currency": charge.unit_amount.currency.lower(),
                "auto_advance": False, "collection_method": "send_invoice",
                "pending_invoice_items_behavior": "exclude", "description": charge.description,
                "metadata": self._metadata(schedule, revops_milestone=charge.product_code,
                                           revops_bill_on=charge.bill_on.isoformat() if charge.bill_on else None),
            }
            invoice_params.update(due_terms(charge.bill_on, schedule.days_until_due, datetime.now(UTC)))
            draft = await self._call("POST", "/v1/invoices", form=invoice_params,
                                     idempotency_key=f"{key}:invoice:{step}")
            created.append(str(draft["id"]))
            unit, quantity = mapping.unit_and_quantity(charge)
            item = await self._call("POST", "/v1/invoiceitems", form={
                "customer": schedule.customer_id, "invoice": draft["id"],
                "currency": charge.unit_amount.currency.lower(), "unit_amount": unit, "quantity": quantity,
                "description": charge.description,
                "metadata": mapping.clean_metadata({mapping.PRODUCT_KEY: charge.product_code}),
            }, idempotency_key=f"{key}:item:{step}")
            created.append(str(item["id"]))
            item_ids += [str(draft["id"]), str(item["id"])]
            drafts.append(OneOffInvoice(invoice_id=str(draft["id"]), charge_code=charge.product_code,
                                        bill_on=charge.bill_on))
        return schedule.model_copy(update={"billing_id": None, "item_ids": item_ids, "refs": _refs(item_ids),
                                           "drafts": drafts})

    async def _create_rate_card(self, schedule: BillingSchedule, key: str, created: list[str]) -> BillingSchedule:
        item_ids: list[str] = []
        for index in range(len(schedule.charges)):
            owned, _price_id = await self._product_and_price(schedule, key, index, recurring=False, created=created)
            item_ids += owned
        return schedule.model_copy(update={"billing_id": None, "item_ids": item_ids, "refs": _refs(item_ids)})

    async def cancel_schedule(self, schedule: BillingSchedule, *, idempotency_key: str) -> None:
        """Cancel the subscription, remove or void one-off invoices, deactivate prices and products."""
        if schedule.billing_id and schedule.billing_id.startswith("sub_"):
            await self._gone_ok("DELETE", f"/v1/subscriptions/{_id(schedule.billing_id)}")
        ids = schedule.item_ids
        for item_id in (i for i in ids if i.startswith("ii_")):
            try:
                await self._gone_ok("DELETE", f"/v1/invoiceitems/{_id(item_id)}")
            except Rejected:
                pass  # its invoice is already finalized: voiding that invoice below undoes it
        for invoice_id in (i for i in ids if i.startswith("in_")):
            await self._undo_invoice(invoice_id, idempotency_key)
        for object_id in ids:
            if object_id.startswith("price_"):
                await self._gone_ok("POST", f"/v1/prices/{_id(object_id)}", form={"active": False},
                                    idempotency_key=f"{idempotency_key}:deactivate:{object_id}")
            elif object_id.startswith("prod_"):
                await self._gone_ok("POST", f"/v1/products/{_id(object_id)}", form={"active": False},
                                    idempotency_key=f"{idempotency_key}:deactivate:{object_id}")

    async def _undo_invoice(self, invoice_id: str, key: str) -> None:
        current = await self._gone_ok("GET", f"/v1/invoices/{_id(invoice_id)}")
        if current is None or current.get("deleted"):
            return
        if current.get("status") == "draft":
            await self._gone_ok("DELETE", f"/v1/invoices/{_id(invoice_id)}")
        elif current.get("status") in ("open", "uncollectible"):
            await self._gone_ok("POST", f"/v1/invoices/{_id(invoice_id)}/void", form={},
                                idempotency_key=f"{key}:void:{invoice_id}")
        # paid or void: nothing left to undo here; a credit note is a business decision

    # -- billable time ----------------------------------------------------------------------------
    async def billed_time(self, customer_id: str, project_code: str) -> list[BilledTime]:
        """The customer's invoice items that billed a time entry of ``project_code`` (metadata
        ``revops_time_entry``), on any invoice but a voided or deleted draft."""
        found: list[BilledTime] = []
        async for item in self._list_all("/v1/invoiceitems", {"customer": customer_id}):
            meta = item.get("metadata") or {}
            if meta.get(TIME_ENTRY_KEY) and meta.get(mapping.PROJECT_KEY) == project_code and not item.get("deleted"):
                found.append(BilledTime(entry_id=str(meta[TIME_ENTRY_KEY]), item_id=str(item["id"]),
                                        invoice_id=item.get("invoice"),
                                        amount=Money.from_minor(int(item["amount"]), str(item["currency"])),
                                        hours=Decimal(str(meta.get("revops_hours") or "0"))))
        return found

    async def bill_time(self, bill: TimeBill, *, idempotency_key: str) -> TimeInvoice:
        """One invoice for the period: a draft (``auto_advance=false``, ``send_invoice``), an invoice item per
        charge not billed yet (hours, rate and period in its description and metadata; look-up by entry ID
        first, then an ``Idempotency-Key`` per entry and invoice), then finalized. Nothing new: no invoice."""
        held = {b.entry_id for b in await self.billed_time(bill.customer_id, bill.project_code)}
        todo = [c for c in bill.charges if c.entry_id not in held]
        already = sorted({c.entry_id for c in bill.charges} & held)
        if not todo:
            return TimeInvoice(already_billed=already)
        currency = bill.currency.lower()
        metadata = mapping.clean_metadata({
            mapping.PROJECT_KEY: bill.project_code, "revops_deal_id": bill.deal_id or None,
            "revops_legal_entity": bill.legal_entity, "revops_schedule_kind": "time_and_materials",
            "revops_period": bill.period.label})
        draft = await self._call("POST", "/v1/invoices", form={
            "customer": bill.customer_id, "currency": currency, "auto_advance": False,
            "collection_method": "send_invoice", "days_until_due": bill.days_until_due,
            "pending_invoice_items_behavior": "exclude",
            "description": f"Time and materials, {bill.period.label}", "metadata": metadata,
        }, idempotency_key=f"{idempotency_key}:invoice")
        invoice_id = str(draft["id"])
        billed: list[BilledTime] = []
        for charge in todo:
            item = await self._call("POST", "/v1/invoiceitems", form={
                "customer": bill.customer_id, "invoice": invoice_id, "currency": currency,
                "amount": charge.amount.to_minor(), "description": charge.description(),
                "period": {"start": unix_midnight(charge.period.start), "end": unix_midnight(charge.period.end) - 1},
                "metadata": mapping.clean_metadata({
                    TIME_ENTRY_KEY: charge.entry_id, mapping.PROJECT_KEY: bill.project_code,
                    mapping.PRODUCT_KEY: charge.role, "revops_hours": str(charge.hours),
                    "revops_rate": str(charge.hourly_rate.amount), "revops_period": charge.period.label,
                    "revops_worked_on": charge.worked_on.isoformat()}),
            }, idempotency_key=f"{idempotency_key}:item:{charge.entry_id}:{invoice_id}")
            billed.append(BilledTime(entry_id=charge.entry_id, item_id=str(item["id"]), invoice_id=invoice_id,
                                     amount=charge.amount, hours=charge.hours))
        await self.finalize_invoice(invoice_id, idempotency_key=f"{idempotency_key}:finalize")
        return TimeInvoice(invoice_id=invoice_id, billed=billed, already_billed=already)

    # -- amendments --------------------------------------------------------------------------------
    async def billing_records(self, customer_id: str, *, known_ids: list[str], project_code: str
                              ) -> list[BillingRecord]:
        """The customer's subscription items and milestone invoices made for ``project_code`` (their
        ``revops_project`` metadata), and the rate-card prices among ``known_ids`` made for it."""
        records: list[BillingRecord] = []
        params: dict[str, Any] = {"customer": customer_id, "limit": 100}
        for _ in range(MAX_PAGES):
            page = await self._call("GET", "/v1/subscriptions", params=params)
            data = page.get("data") or []
            for sub in data:
                if (sub.get("metadata") or {}).get("revops_project") not in (None, project_code):
                    continue
                for item in (sub.get("items") or {}).get("data") or []:
                    if (record := mapping.subscription_item_record(sub, item)) is not None:
                        records.append(record)
            if not page.get("has_more") or not data:
                break
            params["starting_after"] = data[-1]["id"]
        params = {"customer": customer_id, "limit": 100}
        for _ in range(MAX_PAGES):
            page = await self._call("GET", "/v1/invoices", params=params)
            data = page.get("data") or []
            for obj in data:
                if (obj.get("metadata") or {}).get("revops_project") != project_code or obj.get("status") == "void":
                    continue
                if (record := mapping.milestone_invoice_record(obj)) is not None:
                    records.append(record.model_copy(update={"customer_id": customer_id}))
            if not page.get("has_more") or not data:
                break
            params["starting_after"] = data[-1]["id"]
        for price_id in (i for i in known_ids if i.startswith("price_")):
            price = await self._gone_ok("GET", f"/v1/prices/{_id(price_id)}")
            if price is None or (price.get("metadata") or {}).get("revops_project") != project_code:
                continue
            if (record := mapping.rate_record(price)) is not None:
                records.append(record)
        return records

    async def change_subscription_item(self, change: SubscriptionItemChange, *, prorate: bool,
                                       idempotency_key: str) -> BillingRecord:
        """``POST /v1/subscription_items/{id}`` with the quantity (and a new price when the unit amount
        changes: same product and interval, the old price deactivated); ``prorate`` -> Stripe's
        ``proration_behavior`` as this adapter is configured (``create_prorations`` by default), else ``none``."""
        item = await self._call("GET", f"/v1/subscription_items/{_id(change.item_id)}")
        price = item["price"]
        params: dict[str, Any] = {"proration_behavior": self.proration_behavior if prorate else "none"}
        if change.quantity == 0:
            unit, quantity = change.unit_amount.to_minor(), 0
        else:
            unit, quantity = mapping.unit_and_quantity(ScheduledCharge(
                product_code=change.product_code, description=change.product_code, unit_amount=change.unit_amount,
                quantity=change.quantity, interval=change.interval, amount=change.amount))
        price_id = str(price["id"])
        if quantity and unit != price.get("unit_amount"):
            new_price = await self._call("POST", "/v1/prices", form={
                "product": mapping._id(price.get("product")), "currency": price["currency"], "unit_amount": unit,
                "recurring": {"interval": price["recurring"]["interval"],
                              "interval_count": price["recurring"].get("interval_count") or 1},
                "nickname": price.get("nickname"),
                "metadata": mapping.clean_metadata(price.get("metadata") or {}),
            }, idempotency_key=f"{idempotency_key}:price")
            price_id = str(new_price["id"])
        # the price is always sent, so a retry after the item moved sends the very same parameters
        params.update(price=price_id, quantity=quantity)
        updated = await self._call("POST", f"/v1/subscription_items/{_id(change.item_id)}", form=params,
                                   idempotency_key=f"{idempotency_key}:item")
        for retired in {change.old_price_id, str(price["id"])} - {price_id, None}:
            if retired is None or await self._is_catalogue_price(retired, price):
                continue  # every deal at the list price shares it: never the deal's to retire
            await self._gone_ok("POST", f"/v1/prices/{_id(retired)}", form={"active": False},
                                idempotency_key=f"{idempotency_key}:deactivate:{retired}")
        sub = {"id": change.subscription_id, "customer": None, "status": ""}
        record = mapping.subscription_item_record(sub, updated)
        if record is None:
            raise Rejected(f"subscription item {change.item_id} has no product code", vendor=VENDOR)
        return record

    async def _is_catalogue_price(self, price_id: str, known: Mapping[str, Any]) -> bool:
        held = known if known.get("id") == price_id else await self._gone_ok("GET", f"/v1/prices/{_id(price_id)}")
        return bool((held or {}).get("lookup_key"))

    async def set_subscription_end(self, subscription_id: str, end_date: date | None, *,
                                   idempotency_key: str) -> None:
        """``cancel_at`` = midnight of ``end_date`` (empty clears it)."""
        await self._call("POST", f"/v1/subscriptions/{_id(subscription_id)}",
                         form={"cancel_at": unix_midnight(end_date) if end_date else ""},
                         idempotency_key=idempotency_key)

    # -- invoices ----------------------------------------------------------------------------------
    async def get_invoice(self, invoice_id: str) -> Invoice:
        """The invoice with every line (those Stripe does not embed are read from its lines list)."""
        return await self._whole_invoice(await self._call("GET", f"/v1/invoices/{_id(invoice_id)}"))

    async def _whole_invoice(self, obj: dict[str, Any]) -> Invoice:
        lines = obj.get("lines")
        embedded: dict[str, Any] = lines if isinstance(lines, dict) else {}
        if not embedded.get("has_more"):
            return mapping.invoice(obj)
        data = embedded.get("data") or []
        params: dict[str, Any] = {"limit": 100}
        if data:
            params["starting_after"] = data[-1]["id"]
        more = [line async for line in self._list_all(f"/v1/invoices/{obj['id']}/lines", params)]
        return mapping.invoice(obj, more_lines=more)

    async def list_invoices(self, *, customer_id: str | None = None,
                            created_after: datetime | None = None) -> AsyncIterator[Invoice]:
        """All matching invoices, newest first, following ``starting_after`` while ``has_more``."""
        params: dict[str, Any] = {"limit": self.page_size, "customer": customer_id}
        if created_after is not None:
            stamp = created_after if created_after.tzinfo else created_after.replace(tzinfo=UTC)
            params["created[gt]"] = int(stamp.timestamp())
        for _ in range(MAX_PAGES):
            page = await self._call("GET", "/v1/invoices", params=params)
            data = page.get("data") or []
            for obj in data:
                yield await self._whole_invoice(obj)
            if not page.get("has_more") or not data:
                return
            params["starting_after"] = data[-1]["id"]
        raise ConnectorError(f"more than {MAX_PAGES} pages of invoices", vendor=VENDOR)

    async def finalize_invoice(self, invoice_id: str, *, idempotency_key: str | None = None) -> Invoice:
        """Finalize a draft (a milestone accepted or a bill date reached); already open is returned as is."""
        try:
            obj = await self._call("POST", f"/v1/invoices/{_id(invoice_id)}/finalize", form={},
                                   idempotency_key=idempotency_key)
        except Rejected:
            current = await self.get_invoice(invoice_id)
            if current.status.value == "draft":
                raise
            return current
        return await self._whole_invoice(obj)

    async def void_invoice(self, invoice_id: str, *, idempotency_key: str | None = None) -> Invoice:
        return await self._whole_invoice(await self._call("POST", f"/v1/invoices/{_id(invoice_id)}/void", form={},
                                                          idempotency_key=idempotency_key))

    # -- reading customers and schedules (invoice feedback, reconciliation) -------------------------
    async def get_customer(self, customer_id: str) -> BillingCustomer:
        """The customer as an account (``crm_id`` from metadata ``crm_company_id``) and its legal entity."""
        obj = await self._call("GET", f"/v1/customers/{_id(customer_id)}")
        if obj.get("deleted"):
            raise NotFound(f"customer {customer_id} is deleted", vendor=VENDOR, status=404)
        return BillingCustomer(customer_id=customer_id, account=mapping.customer(obj),
                               legal_entity=mapping.customer_legal_entity(obj))

    async def _list_all(self, path: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        params = {"limit": self.page_size, **params}
        for _ in range(MAX_PAGES):
            page = await self._call("GET", path, params=params)
            data = page.get("data") or []
            for obj in data:
                yield obj
            if not page.get("has_more") or not data:
                return
            params["starting_after"] = data[-1]["id"]
        raise ConnectorError(f"more than {MAX_PAGES} pages of {path}", vendor=VENDOR)

    async def billing_schedules_by_project(self, *, include_invoices: bool = True) -> dict[str, list[str]]:
        """Project code -> IDs of the live billing objects made for it (metadata ``revops_project``):
        subscriptions not canceled, invoices not voided (unless ``include_invoices`` is false: reconciliation
        has them already), active prices (time and materials)."""
        found: dict[str, list[str]] = {}

        def note(obj: Mapping[str, Any]) -> None:
            code = (obj.get("metadata") or {}).get(mapping.PROJECT_KEY)
            if code:
                found.setdefault(str(code), []).append(str(obj["id"]))

        async for obj in self._list_all("/v1/subscriptions", {"status": "all"}):
            if obj.get("status") not in ("canceled", "incomplete_expired"):
                note(obj)
        if include_invoices:
            async for obj in self._list_all("/v1/invoices", {}):
                if obj.get("status") not in ("void",) and not obj.get("deleted"):
                    note(obj)
        async for obj in self._list_all("/v1/prices", {"active": "true"}):
            note(obj)
        return found

    async def billing_records_by_project(self) -> dict[str, list[BillingRecord]]:
        """Project code -> what billing holds for it that has no fixed total: the items (price, quantity,
        interval) of its live subscriptions and its active one-time rate-card prices (metadata
        ``revops_project``). Reconciliation checks them against the contract's recurring charges and rates."""
        found: dict[str, list[BillingRecord]] = {}
        async for sub in self._list_all("/v1/subscriptions", {"status": "all"}):
            code = (sub.get("metadata") or {}).get(mapping.PROJECT_KEY)
            if not code or sub.get("status") in ("canceled", "incomplete_expired"):
                continue
            held = found.setdefault(str(code), [])
            held += [r for item in (sub.get("items") or {}).get("data") or []
                     if (r := mapping.subscription_item_record(sub, item)) is not None]
        async for price in self._list_all("/v1/prices", {"active": "true"}):
            code = (price.get("metadata") or {}).get(mapping.PROJECT_KEY)
            if code and (record := mapping.rate_record(price)) is not None:
                found.setdefault(str(code), []).append(record)
        return found

    # -- reconciliation: one page at a time, so the caller paces and checkpoints ----------------------
    async def _page(self, path: str, params: dict[str, Any], cursor: str | None
                    ) -> tuple[list[dict[str, Any]], str | None]:
        # the feed's opaque cursor is Stripe's ``starting_after``: the last object ID of the previous page
        params = {"limit": self.page_size, **params}
        if cursor:
            params["starting_after"] = cursor
        page = await self._call("GET", path, params=params)
        data = page.get("data") or []
        return data, (str(data[-1]["id"]) if data and page.get("has_more") else None)

    async def invoices_page(self, cursor: str | None = None) -> tuple[list[BillingChange], str | None]:
        """One page of invoices, newest first, and the cursor of the next page (``None`` at the end)."""
        data, cursor = await self._page("/v1/invoices", {}, cursor)
        return [BillingChange(object="invoice", id=str(o["id"]), invoice=mapping.invoice(o)) for o in data], cursor

    async def credit_notes_page(self, cursor: str | None = None
                                ) -> tuple[list[BillingChange], str | None]:
        data, cursor = await self._page("/v1/credit_notes", {}, cursor)
        return [BillingChange(object="credit_note", id=str(o["id"]), credit_note=mapping.credit_note(o))
                for o in data if o.get("status") != "void"], cursor

    async def customers_page(self, cursor: str | None = None) -> tuple[list[BillingChange], str | None]:
        data, cursor = await self._page("/v1/customers", {}, cursor)
        return [_customer_change(o) for o in data], cursor

    async def current(self, change: BillingChange) -> BillingChange:
        """The object of a change as it stands now (an event's copy may be older than the object: Stripe
        advises retrieving it); gone is a deleted change."""
        path = {"invoice": "/v1/invoices/", "credit_note": "/v1/credit_notes/", "customer": "/v1/customers/"}
        try:
            obj = await self._call("GET", path[change.object] + change.id)
        except NotFound:
            return change.model_copy(update={"deleted": True})
        if change.object == "invoice":
            return BillingChange(object="invoice", id=change.id, invoice=mapping.invoice(obj))
        if change.object == "credit_note":
            return BillingChange(object="credit_note", id=change.id, deleted=obj.get("status") == "void",
                                 credit_note=mapping.credit_note(obj))
        return _customer_change(obj)

    async def changes_page(self, since: datetime, cursor: str | None = None
                           ) -> tuple[list[BillingChange], str | None]:
        """One page of the event feed since ``since`` (``created[gte]``), newest first, as the objects stood
        in each event: invoices, credit notes and customers (deleted ones flagged). Other events are skipped.
        Read each changed object with :meth:`current` before trusting its amounts."""
        stamp = since if since.tzinfo else since.replace(tzinfo=UTC)
        data, cursor = await self._page("/v1/events", {"created[gte]": int(stamp.timestamp())}, cursor)
        changes: list[BillingChange] = []
        for event in data:
            obj = (event.get("data") or {}).get("object") or {}
            kind, deleted = obj.get("object"), str(event.get("type", "")).endswith(".deleted")
            at = datetime.fromtimestamp(int(event["created"]), tz=UTC)
            if kind == "invoice":
                changes.append(BillingChange(object="invoice", id=str(obj["id"]), deleted=deleted, changed_at=at,
                                             invoice=None if deleted else mapping.invoice(obj)))
            elif kind == "credit_note":
                changes.append(BillingChange(object="credit_note", id=str(obj["id"]), changed_at=at,
                                             deleted=deleted or obj.get("status") == "void",
                                             credit_note=mapping.credit_note(obj)))
            elif kind == "invoiceitem" and _invoice_of(obj):  # an item added to or removed from a draft
                changes.append(BillingChange(object="invoice", id=_invoice_of(obj), changed_at=at))
            elif kind == "customer":
                change = _customer_change(obj)
                changes.append(change.model_copy(update={"deleted": deleted or change.deleted, "changed_at": at}))
        return changes, cursor

    async def changes_since(self, since: datetime, *, cursor: str | None = None
                            ) -> tuple[list[DomainEvent], str | None]:
        """One page of the events list (``GET /v1/events``, ``created[gte]``, the types the flows act on),
        newest first as Stripe lists them, as the canonical events their webhooks make (same IDs); the cursor
        of the next page (Stripe's ``starting_after``) or ``None``. An event that cannot be read (another API
        version) is left out with a warning naming its ID, as its webhook would have been refused: one such
        event must not stop the poll for every other."""
        stamp = since if since.tzinfo else since.replace(tzinfo=UTC)
        data, cursor = await self._page("/v1/events", {"created[gte]": int(stamp.timestamp()),
                                                       **{f"types[{i}]": t for i, t in enumerate(TYPES)}}, cursor)
        events: list[DomainEvent] = []
        for event in data:
            try:
                events += domain_events(event)
            except PayloadInvalid as exc:
                log.warning("billing event left out of the poll: unreadable",
                            extra={"vendor": VENDOR, "event_id": str(event.get("id"))[:64], "field": exc.field})
        return events, cursor

    async def latest_change_at(self) -> datetime | None:
        """When billing recorded its newest event (its clock): where a full pass leaves the checkpoint."""
        data, _ = await self._page("/v1/events", {"limit": 1}, None)
        return datetime.fromtimestamp(int(data[0]["created"]), tz=UTC) if data else None

    # -- credit notes ------------------------------------------------------------------------------
    async def create_credit_note(self, credit_note: CreditNote, *, idempotency_key: str) -> CreditNote:
        """Issue a credit note for an amount of an open or paid invoice."""
        obj = await self._call("POST", "/v1/credit_notes", form=mapping.credit_note_params(credit_note),
                               idempotency_key=idempotency_key)
        return mapping.credit_note(obj)


def _is_entry(price: Mapping[str, Any], entry: CatalogueEntry) -> bool:
    """Whether billing's price under a catalogue key is still the catalogue's: active, same amount and period."""
    held = mapping.billing_price(price, None)
    return held.active and held.unit_amount == entry.unit_amount and held.interval == entry.interval


def _invoice_of(obj: Mapping[str, Any]) -> str:
    invoice = obj.get("invoice")
    return str(invoice.get("id") if isinstance(invoice, Mapping) else invoice or "")


def _customer_change(obj: Mapping[str, Any]) -> BillingChange:
    return BillingChange(object="customer", id=str(obj["id"]), deleted=bool(obj.get("deleted")),
                         company_id=mapping.customer(obj).crm_id or "" if not obj.get("deleted") else "",
                         legal_entity=mapping.customer_legal_entity(obj) or "")


def from_settings(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                  timeout: httpx.Timeout | float | None = None, config: StripeSettings | None = None
                  ) -> StripeBilling:
    """A ``StripeBilling`` on the configured Stripe (``STRIPE_BASE_URL``) with the secret key and pinned API
    version."""
    config = config or StripeSettings.of(settings)
    timeout = timeout if timeout is not None else settings.http_timeout_seconds
    client = build_client(
        base_url=config.base_url,
        headers={"Authorization": f"Bearer {config.api_key}", "Stripe-Version": API_VERSION},
        timeout=timeout, transport=transport,
    )
    return StripeBilling(client, proration_behavior=config.proration_behavior, catalogue=settings.product_catalogue())


__all__ = ["API_VERSION", "StripeBilling", "from_settings"]
