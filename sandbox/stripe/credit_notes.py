"""``/v1/credit_notes``: pre-payment credit notes on open invoices, post-payment ones on paid invoices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.kit import new_id
from sandbox.stripe.core import Emulator
from sandbox.stripe.objects import Params, bad, missing, now, recalculate

CREDIT_NOTE_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


class CreditNotes:
    """The credit note routes over the shared :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    def register(self, router: APIRouter) -> None:
        """Add the routes to ``router`` (behind the API key check)."""
        router.post("/v1/credit_notes")(self.create_credit_note)
        router.get("/v1/credit_notes")(self.list_credit_notes)
        router.get("/v1/credit_notes/{cn_id}")(self.get_credit_note)

    async def create_credit_note(self, request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"amount", "credit_amount", "effective_at", "invoice", "lines", "memo", "metadata",
                              "out_of_band_amount", "reason", "refund_amount"})
            invoice = self.emu.get("invoice", p.str("invoice", required=True) or "", "invoice")
            if invoice["status"] not in ("open", "paid"):
                raise bad(f"Credit notes can only be issued for open or paid invoices; {invoice['id']} is "
                          f"{invoice['status']}.", "invoice")
            reason = p.enum("reason", CREDIT_NOTE_REASONS)
            cn_id = new_id("cn_", self.store)
            lines = self.credit_lines(cn_id, p.raw("lines"), invoice)
            amount = p.int("amount", minimum=1)
            if amount is None:
                amount = sum(line["amount"] for line in lines)
                if amount <= 0:
                    raise bad("Missing required param: amount or lines.", "amount", "parameter_missing")
            elif not lines:
                lines = [credit_line(new_id("cnli_", self.store), amount, "Credit", None)]
            elif amount != sum(line["amount"] for line in lines):
                raise bad("The amount must equal the sum of the credit note lines.", "amount")
            credited = invoice["pre_payment_credit_notes_amount"] + invoice["post_payment_credit_notes_amount"]
            pre_payment = invoice["status"] == "open"
            limit = invoice["amount_remaining"] if pre_payment else invoice["total"] - credited
            if amount > limit:
                raise bad(f"The credit note amount ({amount}) must be no greater than the amount that can be "
                          f"credited ({limit}).", "amount")
            out_of_band = p.int("out_of_band_amount", minimum=0)
            refund = p.int("refund_amount", minimum=0) or 0
            credit = p.int("credit_amount", minimum=0)
            if not pre_payment:
                if credit is None:
                    credit = amount - refund - (out_of_band or 0)
                if credit + refund + (out_of_band or 0) != amount:
                    raise bad("The sum of credit_amount, refund_amount and out_of_band_amount must equal the "
                              "credit note amount.", "amount")
            balance_tx = None
            if not pre_payment and credit:
                customer = self.emu.get("customer", invoice["customer"])
                customer["balance"] -= credit
                self.emu.save(customer)
                balance_tx = new_id("cbtxn_", self.store)
            ts = now()
            note = {
                "id": cn_id, "object": "credit_note", "amount": amount, "amount_shipping": 0, "created": ts,
                "currency": invoice["currency"], "customer": invoice["customer"],
                "customer_balance_transaction": balance_tx, "discount_amount": 0, "discount_amounts": [],
                "effective_at": p.int("effective_at") or ts, "invoice": invoice["id"],
                "lines": {"object": "list", "data": lines, "has_more": False,
                          "url": f"/v1/credit_notes/{cn_id}/lines"},
                "livemode": False, "memo": p.str("memo"), "metadata": p.metadata() or {},
                "number": f"{invoice['number']}-CN-{self.store.next_number('cn:' + invoice['id']):02d}",
                "out_of_band_amount": out_of_band, "pdf": f"https://pay.stripe.com/credit_notes/sandbox/{cn_id}/pdf",
                "reason": reason, "refund": None, "shipping_cost": None, "status": "issued", "subtotal": amount,
                "subtotal_excluding_tax": amount, "tax_amounts": [], "total": amount, "total_excluding_tax": amount,
                "type": "pre_payment" if pre_payment else "post_payment", "voided_at": None,
            }
            self.emu.save(note)
            if pre_payment:
                invoice["pre_payment_credit_notes_amount"] += amount
                recalculate(invoice)
                previous = None
                if invoice["amount_remaining"] == 0:
                    previous = self.emu.mark_paid(invoice)
                    previous.update(amount_paid=invoice["amount_paid"])
                self.emu.save(invoice)
                if previous is not None:
                    self.emu.emit("invoice.paid", invoice, request)
                    self.emu.emit("invoice.updated", invoice, request, previous)
            else:
                invoice["post_payment_credit_notes_amount"] += amount
                self.emu.save(invoice)
            if pre_payment and previous is None:  # the amounts due changed: Stripe reports the invoice updated
                self.emu.emit("invoice.updated", invoice, request, {"amount_due": invoice["amount_due"] + amount,
                                                              "amount_remaining": invoice["amount_remaining"] + amount})
            self.emu.emit("credit_note.created", note, request)
            return note
        return await self.emu.mutate(request, handler)

    def credit_lines(self, cn_id: str, raw: Any, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad("Invalid array", "lines")
        by_id = {line["id"]: line for line in invoice["lines"]["data"]}
        lines: list[dict[str, Any]] = []
        for i, entry in enumerate(raw):
            lp = Params(entry if isinstance(entry, dict) else {}, {"amount", "description", "invoice_line_item",
                                                                   "quantity", "type", "unit_amount", "metadata"})
            kind = lp.enum("type", ("custom_line_item", "invoice_line_item"))
            if kind is None:
                raise bad(f"Missing required param: lines[{i}][type].", f"lines[{i}][type]", "parameter_missing")
            quantity = lp.int("quantity", minimum=1) or 1
            if kind == "invoice_line_item":
                ref = lp.str("invoice_line_item", required=True) or ""
                if ref not in by_id:
                    raise missing("invoice line item", ref, f"lines[{i}][invoice_line_item]")
                amount = lp.int("amount", minimum=1) or by_id[ref]["amount"]
                lines.append(credit_line(new_id("cnli_", self.store), amount, by_id[ref]["description"], ref,
                                         quantity))
            else:
                unit = lp.int("unit_amount", required=True, minimum=1) or 0
                lines.append(credit_line(new_id("cnli_", self.store), unit * quantity, lp.str("description"), None,
                                         quantity))
        return lines

    async def list_credit_notes(self, request: Request) -> dict[str, Any]:
        return self.emu.listing(request, "credit_note", "/v1/credit_notes",
                                {"customer": "customer", "invoice": "invoice"})

    async def get_credit_note(self, cn_id: str) -> dict[str, Any]:
        return self.emu.get("credit_note", cn_id)


def credit_line(line_id: str, amount: int, description: str | None,
                invoice_line: str | None, quantity: int = 1) -> dict[str, Any]:
    """One credit note line: crediting an invoice line (``invoice_line``) or a custom amount."""
    line: dict[str, Any] = {
            "id": line_id, "object": "credit_note_line_item", "amount": amount, "amount_excluding_tax": amount,
            "description": description, "discount_amount": 0, "discount_amounts": [], "livemode": False,
            "quantity": quantity, "tax_amounts": [],
            "tax_rates": [], "type": "invoice_line_item" if invoice_line else "custom_line_item",
            "unit_amount": None if invoice_line else amount // max(quantity, 1),
            "unit_amount_decimal": None if invoice_line else str(amount // max(quantity, 1)),
            "unit_amount_excluding_tax": str(amount // max(quantity, 1))}
    if invoice_line:  # the spec types it as a non-null string: absent on custom lines
        line["invoice_line_item"] = invoice_line
    return line
