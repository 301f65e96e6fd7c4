"""``/v1/invoiceitems`` and ``/v1/invoices``: invoice items, and invoices from draft to finalized, paid,
void or uncollectible."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.kit import new_id
from sandbox.stripe.core import Emulator
from sandbox.stripe.objects import (
    Params,
    StripeError,
    bad,
    currency,
    invoice_object,
    line_from_item,
    merge_metadata,
    now,
    paginate,
    public,
    recalculate,
)

PAST_DUE_DATE = "Invoice due dates must be in the future."


class InvoiceItems:
    """The invoice item routes over the shared :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    def register(self, router: APIRouter) -> None:
        """Add the routes to ``router`` (behind the API key check)."""
        router.post("/v1/invoiceitems")(self.create_invoice_item)
        router.get("/v1/invoiceitems")(self.list_invoice_items)
        router.get("/v1/invoiceitems/{item_id}")(self.get_invoice_item)
        router.delete("/v1/invoiceitems/{item_id}")(self.delete_invoice_item)

    async def create_invoice_item(self, request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"amount", "currency", "customer", "description", "discountable", "invoice",
                              "metadata", "period", "price", "quantity", "tax_behavior", "unit_amount",
                              "unit_amount_decimal"})
            customer = self.emu.get("customer", p.str("customer", required=True) or "", "customer")
            invoice = None
            if invoice_id := p.str("invoice"):
                invoice = self.emu.get("invoice", invoice_id, "invoice")
                if invoice["status"] != "draft":
                    raise bad("You can only add invoice items to draft invoices.", "invoice",
                              "invoice_not_editable")
            quantity = p.int("quantity", minimum=0)
            price = None
            if price_id := p.str("price"):
                price = self.emu.get("price", price_id, "price")
                unit, code = price["unit_amount"], price["currency"]
            else:
                code = currency(p.str("currency", required=True))
                unit = p.int("unit_amount")
                if unit is None:
                    amount = p.int("amount")
                    if amount is None:
                        raise bad("Missing required param: amount.", "amount", "parameter_missing")
                    unit, quantity = amount, 1 if quantity is None else quantity
            quantity = 1 if quantity is None else quantity
            if invoice is not None and invoice["currency"] != code:
                raise bad(f"The currency of this invoice item ({code}) must match the invoice's currency "
                          f"({invoice['currency']}).", "currency")
            ts = now()
            item = {
                "id": new_id("ii_", self.store), "object": "invoiceitem", "amount": unit * quantity, "currency": code,
                "customer": customer["id"], "date": ts, "description": p.str("description"),
                "discountable": p.bool("discountable") is not False, "discounts": [],
                "invoice": invoice["id"] if invoice else None, "livemode": False,
                "metadata": p.metadata() or {}, "period": {"start": ts, "end": ts}, "price": price,
                "proration": False, "quantity": quantity, "subscription": None, "tax_rates": [],
                "test_clock": None, "unit_amount": unit, "unit_amount_decimal": str(unit),
            }
            self.emu.save(item)
            if invoice is not None:
                invoice["lines"]["data"].append(line_from_item(item))
                recalculate(invoice)
                self.emu.save(invoice)
            self.emu.emit("invoiceitem.created", item, request)
            return item
        return await self.emu.mutate(request, handler)

    async def list_invoice_items(self, request: Request) -> dict[str, Any]:
        return self.emu.listing(request, "invoiceitem", "/v1/invoiceitems",
                                {"customer": "customer", "invoice": "invoice"})

    async def get_invoice_item(self, item_id: str) -> dict[str, Any]:
        return self.emu.get("invoiceitem", item_id)

    async def delete_invoice_item(self, request: Request, item_id: str) -> dict[str, Any]:
        item = self.emu.get("invoiceitem", item_id)
        if item["invoice"]:
            invoice = self.store.get("invoice", item["invoice"])
            if invoice and invoice["status"] != "draft":
                raise bad("You cannot delete an invoice item that is attached to an invoice that is no longer "
                          "editable.", code="invoice_not_editable")
            if invoice:
                invoice["lines"]["data"] = [li for li in invoice["lines"]["data"] if li.get("invoice_item") != item_id]
                recalculate(invoice)
                self.emu.save(invoice)
        self.store.delete("invoiceitem", item_id)
        self.emu.emit("invoiceitem.deleted", item, request)
        return {"id": item_id, "object": "invoiceitem", "deleted": True}


class Invoices:
    """The invoice routes over the shared :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    def register(self, router: APIRouter) -> None:
        """Add the routes to ``router`` (behind the API key check)."""
        router.post("/v1/invoices")(self.create_invoice)
        router.get("/v1/invoices")(self.list_invoices)
        router.get("/v1/invoices/{invoice_id}")(self.get_invoice)
        router.get("/v1/invoices/{invoice_id}/lines")(self.list_invoice_lines)
        router.post("/v1/invoices/{invoice_id}")(self.update_invoice)
        router.delete("/v1/invoices/{invoice_id}")(self.delete_invoice)
        router.post("/v1/invoices/{invoice_id}/finalize")(self.finalize_invoice)
        router.post("/v1/invoices/{invoice_id}/pay")(self.pay_invoice)
        router.post("/v1/invoices/{invoice_id}/void")(self.void_invoice)
        router.post("/v1/invoices/{invoice_id}/mark_uncollectible")(self.mark_uncollectible)

    async def create_invoice(self, request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"auto_advance", "collection_method", "currency", "customer", "days_until_due",
                              "description", "due_date", "footer", "metadata", "pending_invoice_items_behavior",
                              "subscription"})
            customer = self.emu.get("customer", p.str("customer", required=True) or "", "customer")
            method = p.enum("collection_method", ("charge_automatically", "send_invoice"),
                            default="charge_automatically") or "charge_automatically"
            due, days = p.int("due_date"), p.int("days_until_due", minimum=0)
            if due is not None and days is not None:
                raise bad("You may only specify one of these parameters: days_until_due, due_date.")
            if method != "send_invoice" and (due is not None or days is not None):
                raise bad("Invoices with collection_method charge_automatically cannot have a due date.",
                          "due_date" if due is not None else "days_until_due")
            if due is not None and due <= now():
                raise bad(PAST_DUE_DATE, "due_date")
            if method == "send_invoice" and due is None:
                due = now() + 86400 * (30 if days is None else days)
            behavior = p.enum("pending_invoice_items_behavior", ("exclude", "include", "include_and_require"),
                              default="exclude")
            code = currency(p.str("currency") or customer.get("currency") or "usd")
            invoice = invoice_object(new_id("in_", self.store), customer, currency_code=code, collection_method=method,
                                     due_date=due, auto_advance=bool(p.bool("auto_advance")),
                                     metadata=p.metadata() or {}, description=p.str("description"),
                                     billing_reason="manual")
            invoice["footer"] = p.str("footer")
            if behavior != "exclude":
                pending = self.store.list("invoiceitem", where=lambda i: i["customer"] == customer["id"]
                                     and i["invoice"] is None and i["currency"] == code)
                if behavior == "include_and_require" and not pending:
                    raise bad("Nothing to invoice for customer", code="invoice_no_customer_line_items")
                for item in pending:
                    item["invoice"] = invoice["id"]
                    self.emu.save(item)
                    invoice["lines"]["data"].append(line_from_item(item))
            recalculate(invoice)
            self.emu.save(invoice)
            self.emu.emit("invoice.created", invoice, request)
            return invoice
        return await self.emu.mutate(request, handler)

    async def list_invoices(self, request: Request) -> dict[str, Any]:
        return self.emu.listing(request, "invoice", "/v1/invoices",
                       {"customer": "customer", "status": "status", "subscription": "subscription",
                        "collection_method": "collection_method"})

    async def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        return public(self.emu.get("invoice", invoice_id))

    async def list_invoice_lines(self, request: Request, invoice_id: str) -> dict[str, Any]:
        """Every line of the invoice, in invoice order, by cursor (``limit``/``starting_after``/``ending_before``)."""
        q = self.emu.query(request)
        Params(q, {"limit", "starting_after", "ending_before"})
        invoice = self.emu.get("invoice", invoice_id)
        return paginate(list(invoice["lines"]["data"]), q, f"/v1/invoices/{invoice_id}/lines", "line_item")

    async def update_invoice(self, request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"auto_advance", "description", "due_date", "footer", "metadata"})
            invoice = self.emu.get("invoice", invoice_id)
            if invoice["status"] != "draft" and set(data) - {"metadata", "description", "footer", "expand"}:
                raise bad("Finalized invoices can't be updated in this way", code="invoice_not_editable")
            for name in ("description", "footer"):
                if name in p:
                    invoice[name] = p.str(name)
            if "due_date" in p:
                due = p.int("due_date")
                if due is not None and due <= now():
                    raise bad(PAST_DUE_DATE, "due_date")
                invoice["due_date"] = due
            if (auto := p.bool("auto_advance")) is not None:
                invoice["auto_advance"] = auto
            before = {k: json.loads(json.dumps(invoice.get(k))) for k in
                      ("description", "footer", "due_date", "auto_advance", "metadata")}
            invoice["metadata"] = merge_metadata(invoice["metadata"], p.metadata(), p.raw("metadata"))
            saved = self.emu.save(invoice)
            changed = {k: v for k, v in before.items() if invoice.get(k) != v}
            if changed:  # Stripe sends invoice.updated with the previous values of what changed
                self.emu.emit("invoice.updated", invoice, request, changed)
            return saved
        return await self.emu.mutate(request, handler)

    async def delete_invoice(self, request: Request, invoice_id: str) -> dict[str, Any]:
        invoice = self.emu.get("invoice", invoice_id)
        if invoice["status"] != "draft":
            raise bad("You can only delete draft invoices.", code="invoice_not_editable")
        for item in self.store.list("invoiceitem", where=lambda i: i["invoice"] == invoice_id):
            self.store.delete("invoiceitem", item["id"])
        self.store.put("invoice", invoice_id, {"id": invoice_id, "object": "invoice", "deleted": True})
        self.emu.emit("invoice.deleted", invoice, request)
        return {"id": invoice_id, "object": "invoice", "deleted": True}

    async def finalize_invoice(self, request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"auto_advance"})
            invoice = self.emu.get("invoice", invoice_id)
            if (auto := p.bool("auto_advance")) is not None:
                invoice["auto_advance"] = auto
            self.emu.finalize(invoice, request)
            return self.emu.get("invoice", invoice_id)
        return await self.emu.mutate(request, handler)

    async def pay_invoice(self, request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"forgive", "paid_out_of_band", "payment_method", "source", "off_session", "mandate"})
            invoice = self.emu.get("invoice", invoice_id)
            if invoice["status"] == "paid":
                raise bad("Invoice is already paid", code="invoice_already_paid")
            if not p.bool("paid_out_of_band"):
                raise StripeError(402, "This customer has no attached payment source or default payment method.",
                                  type_="card_error", code="invoice_payment_intent_requires_action")
            if invoice["status"] == "draft":
                self.emu.finalize(invoice, request)
                invoice = self.emu.get("invoice", invoice_id)
            if invoice["status"] in ("open", "uncollectible") and invoice["amount_remaining"] > 0:
                self.emu.pay(invoice, invoice["amount_remaining"], request, out_of_band=True)
            return self.emu.get("invoice", invoice_id)
        return await self.emu.mutate(request, handler)

    def transition(self, invoice_id: str, request: Request, status: str, stamp: str, event: str) -> dict[str, Any]:
        invoice = self.emu.get("invoice", invoice_id)
        allowed = ("open", "uncollectible") if status == "void" else ("open",)
        if invoice["status"] not in allowed:
            raise bad(f"You can only mark {' or '.join(allowed)} invoices as {status}; this one is "
                      f"{invoice['status']}.", code="invoice_not_open")
        previous = {"status": invoice["status"]}
        invoice["status"] = status
        invoice["status_transitions"][stamp] = now()
        if status == "void":
            invoice["amount_remaining"] = 0
        self.emu.save(invoice)
        self.emu.emit(event, invoice, request)
        self.emu.emit("invoice.updated", invoice, request, previous)
        return invoice

    async def void_invoice(self, request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            Params(data, set())
            return self.transition(invoice_id, request, "void", "voided_at", "invoice.voided")
        return await self.emu.mutate(request, handler)

    async def mark_uncollectible(self, request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            Params(data, set())
            return self.transition(invoice_id, request, "uncollectible", "marked_uncollectible_at",
                              "invoice.marked_uncollectible")
        return await self.emu.mutate(request, handler)
