"""``/v1/subscriptions`` and ``/v1/subscription_items``: subscriptions billed by invoice, amended
with prorations, cancelled."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.kit import new_id
from sandbox.stripe.catalog import recurring_of
from sandbox.stripe.core import Emulator
from sandbox.stripe.objects import (
    Params,
    add_interval,
    bad,
    currency,
    invoice_object,
    line_from_item,
    merge_metadata,
    missing,
    now,
    recalculate,
)


class Subscriptions:
    """The subscription and subscription item routes over the shared :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    def register(self, router: APIRouter) -> None:
        """Add the routes to ``router`` (behind the API key check)."""
        router.post("/v1/subscriptions")(self.create_subscription)
        router.get("/v1/subscriptions")(self.list_subscriptions)
        router.get("/v1/subscriptions/{sub_id}")(self.get_subscription)
        router.post("/v1/subscriptions/{sub_id}")(self.update_subscription)
        router.get("/v1/subscription_items/{item_id}")(self.get_subscription_item)
        router.post("/v1/subscription_items/{item_id}")(self.update_subscription_item)
        router.delete("/v1/subscriptions/{sub_id}")(self.cancel_subscription)

    def subscription_items(self, sub_id: str, raw: Any) -> list[dict[str, Any]]:
        if not isinstance(raw, list) or not raw:
            raise bad("Missing required param: items.", "items", "parameter_missing")
        items: list[dict[str, Any]] = []
        for i, entry in enumerate(raw):
            param = f"items[{i}]"
            if not isinstance(entry, dict):
                raise bad(f"Invalid hash: {param}", param)
            ip = Params(entry, {"price", "price_data", "quantity", "metadata"})
            if price_id := ip.str("price"):
                price = self.emu.get("price", price_id, f"{param}[price]")
            elif isinstance(data := ip.raw("price_data"), dict):
                dp = Params(data, {"currency", "product", "recurring", "unit_amount", "unit_amount_decimal",
                                   "tax_behavior"})
                price = self.emu.new_price(product=dp.str("product", required=True) or "",
                                  currency_code=currency(dp.str("currency", required=True)),
                                  unit_amount=dp.int("unit_amount", required=True, minimum=0) or 0,
                                  recurring=recurring_of(dp.raw("recurring"), f"{param}[price_data][recurring]"),
                                  metadata={}, active=False, param=f"{param}[price_data][product]")
            else:
                raise bad(f"Missing required param: {param}[price].", f"{param}[price]", "parameter_missing")
            if price["recurring"] is None:
                raise bad(f"The price specified ({price['id']}) is a one-time price. Subscriptions only "
                          "accept recurring prices.", f"{param}[price]")
            if not price["active"] and ip.str("price"):
                raise bad("The price specified is inactive. This field only accepts active prices.",
                          f"{param}[price]")
            items.append({"id": new_id("si_", self.store), "object": "subscription_item", "billing_thresholds": None,
                          "created": now(), "metadata": ip.metadata() or {}, "price": price,
                          "quantity": ip.int("quantity", minimum=0) if "quantity" in ip else 1,
                          "subscription": sub_id, "tax_rates": []})
        first = items[0]["price"]
        for item in items[1:]:
            price = item["price"]
            if price["currency"] != first["currency"]:
                raise bad("All prices on a subscription must have the same currency.", "items")
            if price["recurring"] != first["recurring"]:
                raise bad("Currently all prices on a subscription must have the same `recurring.interval` and "
                          "`recurring.interval_count`.", "items")
        return items

    async def create_subscription(self, request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"backdate_start_date", "billing_cycle_anchor", "cancel_at", "collection_method",
                              "currency", "customer", "days_until_due", "description", "items", "metadata",
                              "payment_behavior", "proration_behavior", "trial_end"})
            customer = self.emu.get("customer", p.str("customer", required=True) or "", "customer")
            method = p.enum("collection_method", ("charge_automatically", "send_invoice"),
                            default="charge_automatically")
            days = p.int("days_until_due", minimum=0)
            if method == "send_invoice" and days is None:
                raise bad("Missing required param: days_until_due.", "days_until_due", "parameter_missing")
            if method == "charge_automatically":
                raise bad("This customer has no attached payment source or default payment method. Please "
                          "consider adding a default payment method.", code="resource_missing")
            p.enum("proration_behavior", ("always_invoice", "create_prorations", "none"))
            p.enum("payment_behavior", ("allow_incomplete", "default_incomplete", "error_if_incomplete",
                                        "pending_if_incomplete"))
            ts = now()
            sub_id = new_id("sub_", self.store)
            items = self.subscription_items(sub_id, p.raw("items"))
            recurring = items[0]["price"]["recurring"]
            start = p.int("backdate_start_date") or ts
            if start > ts:
                raise bad("backdate_start_date must be in the past.", "backdate_start_date")
            trial_end = None if p.str("trial_end") in (None, "now") else p.int("trial_end")
            anchor = p.int("billing_cycle_anchor")
            cancel_at = p.int("cancel_at")
            for name, value in (("trial_end", trial_end), ("billing_cycle_anchor", anchor), ("cancel_at", cancel_at)):
                if value is not None and value <= ts:
                    raise bad("Invalid timestamp: must be an integer Unix timestamp in the future.", name)
            status, bill_now = "active", True
            if trial_end:
                status, bill_now, period = "trialing", False, (ts, trial_end)
                anchor = trial_end
            elif anchor:
                bill_now, period = False, (start, anchor)
            else:
                anchor = start
                period = (start, add_interval(start, recurring["interval"], recurring["interval_count"]))
            sub = {
                "id": sub_id, "object": "subscription", "application": None, "application_fee_percent": None,
                "automatic_tax": {"enabled": False}, "billing_cycle_anchor": anchor, "billing_thresholds": None,
                "cancel_at": cancel_at, "cancel_at_period_end": False, "canceled_at": None,
                "cancellation_details": {"comment": None, "feedback": None, "reason": None},
                "collection_method": method, "created": ts, "currency": items[0]["price"]["currency"],
                "current_period_end": period[1], "current_period_start": period[0],
                "customer": customer["id"], "days_until_due": days, "default_payment_method": None,
                "default_source": None, "default_tax_rates": [], "description": p.str("description", max_length=500),
                "discount": None, "ended_at": None,
                "items": {"object": "list", "data": items, "has_more": False,
                          "url": f"/v1/subscription_items?subscription={sub_id}"},
                "latest_invoice": None, "livemode": False, "metadata": p.metadata() or {},
                "next_pending_invoice_item_invoice": None, "on_behalf_of": None, "pause_collection": None,
                "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                                     "save_default_payment_method": "off"},
                "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None,
                "schedule": None, "start_date": start, "status": status, "test_clock": None,
                "transfer_data": None, "trial_end": trial_end, "trial_settings": {
                    "end_behavior": {"missing_payment_method": "create_invoice"}},
                "trial_start": ts if trial_end else None,
            }
            self.emu.save(sub)
            self.emu.emit("customer.subscription.created", sub, request)
            if bill_now:
                self.emu.bill_period(sub, period, "subscription_create", request)
            return self.emu.get("subscription", sub_id)
        return await self.emu.mutate(request, handler)

    async def list_subscriptions(self, request: Request) -> dict[str, Any]:
        # Stripe leaves canceled subscriptions out unless status=canceled or all is asked for.
        return self.emu.listing(request, "subscription", "/v1/subscriptions", {"customer": "customer", "status": ""},
                       where=lambda o, q: q.get("status") == "all" or o["status"] == q.get("status")
                       or ("status" not in q and o["status"] != "canceled"))

    async def get_subscription(self, sub_id: str) -> dict[str, Any]:
        return self.emu.get("subscription", sub_id)

    async def update_subscription(self, request: Request, sub_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"cancel_at", "days_until_due", "description", "metadata"})
            sub = self.emu.get("subscription", sub_id)
            if sub["status"] == "canceled":
                raise bad("A canceled subscription can only update its cancellation_details and metadata.")
            if "cancel_at" in p:
                sub["cancel_at"] = p.int("cancel_at")
            if "days_until_due" in p:
                sub["days_until_due"] = p.int("days_until_due", minimum=0)
            if "description" in p:
                sub["description"] = p.str("description")
            sub["metadata"] = merge_metadata(sub["metadata"], p.metadata(), p.raw("metadata"))
            self.emu.save(sub)
            self.emu.emit("customer.subscription.updated", sub, request)
            return sub
        return await self.emu.mutate(request, handler)

    # -- subscription items (amendments change quantity and price, with prorations) ----------------
    def item_and_subscription(self, item_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        subs = self.store.list("subscription", where=lambda s: any(i["id"] == item_id for i in s["items"]["data"]))
        if not subs:
            raise missing("subscription_item", item_id)
        sub = subs[0]
        return next(i for i in sub["items"]["data"] if i["id"] == item_id), sub

    def prorate(self, sub: dict[str, Any], item: dict[str, Any], old: tuple[dict[str, Any], int], behavior: str,
                request: Request) -> None:
        """Stripe's prorations: credit the unused time of the old price and quantity, charge the rest of the
        period at the new ones, as pending invoice items (``always_invoice`` invoices them at once).
        Nothing is prorated while trialing (nothing was billed) or when the amount does not change."""
        old_price, old_quantity = old
        old_amount = old_price["unit_amount"] * old_quantity
        new_amount = item["price"]["unit_amount"] * item["quantity"]
        if behavior == "none" or sub["status"] != "active" or old_amount == new_amount:
            return
        ts, (start, end) = now(), (sub["current_period_start"], sub["current_period_end"])
        fraction = max(0.0, min(1.0, (end - ts) / (end - start))) if end > start else 0.0
        customer = self.emu.get("customer", sub["customer"])
        invoice = None
        if behavior == "always_invoice":
            invoice = invoice_object(new_id("in_", self.store), customer, currency_code=sub["currency"],
                                     collection_method=sub["collection_method"],
                                     due_date=ts + 86400 * int(sub["days_until_due"] or 30), auto_advance=True,
                                     metadata={}, description=None, billing_reason="subscription_update",
                                     subscription=sub, period=(ts, end))
        for label, price, quantity, amount in (
                ("Unused time on", old_price, old_quantity, -round(old_amount * fraction)),
                ("Remaining time on", item["price"], item["quantity"], round(new_amount * fraction))):
            if amount == 0:
                continue
            product = self.store.get("product", price["product"]) or {"name": price["product"]}
            pending = {
                "id": new_id("ii_", self.store), "object": "invoiceitem", "amount": amount, "currency": sub["currency"],
                "customer": sub["customer"], "date": ts, "description": f"{label} {quantity} × {product['name']}",
                "discountable": False, "discounts": [], "invoice": invoice["id"] if invoice else None,
                "livemode": False, "metadata": {}, "period": {"start": ts, "end": end}, "price": price,
                "proration": True, "quantity": quantity, "subscription": sub["id"],
                "subscription_item": item["id"], "tax_rates": [], "test_clock": None,
                "unit_amount": amount, "unit_amount_decimal": str(amount),
            }
            self.emu.save(pending)
            if invoice is not None:
                line = line_from_item(pending)
                line.update(proration=True, subscription=sub["id"], subscription_item=item["id"])
                invoice["lines"]["data"].append(line)
        if invoice is not None:
            recalculate(invoice)
            self.emu.save(invoice)
            self.emu.emit("invoice.created", invoice, request)
            self.emu.finalize(invoice, request)

    async def get_subscription_item(self, item_id: str) -> dict[str, Any]:
        return self.item_and_subscription(item_id)[0]

    async def update_subscription_item(self, request: Request, item_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"billing_thresholds", "metadata", "off_session", "payment_behavior", "price",
                              "price_data", "proration_behavior", "proration_date", "quantity", "tax_rates"})
            item, sub = self.item_and_subscription(item_id)
            if sub["status"] == "canceled":
                raise bad("A canceled subscription can only update its cancellation_details and metadata.")
            behavior = p.enum("proration_behavior", ("always_invoice", "create_prorations", "none"),
                              default="create_prorations") or "create_prorations"
            old = (item["price"], item["quantity"])
            if price_id := p.str("price"):
                price = self.emu.get("price", price_id, "price")
                if price["recurring"] is None:
                    raise bad(f"The price specified ({price_id}) is a one-time price. Subscriptions only accept "
                              "recurring prices.", "price")
                if not price["active"]:
                    raise bad("The price specified is inactive. This field only accepts active prices.", "price")
                if price["currency"] != sub["currency"] or price["recurring"] != item["price"]["recurring"]:
                    raise bad("The price must have the same currency and recurring interval as the subscription.",
                              "price")
                item["price"] = price
            if "quantity" in p:
                item["quantity"] = p.int("quantity", minimum=0)
            item["metadata"] = merge_metadata(item["metadata"], p.metadata(), p.raw("metadata"))
            self.prorate(sub, item, old, behavior, request)
            self.emu.save(sub)
            self.emu.emit("customer.subscription.updated", sub, request)
            return item
        return await self.emu.mutate(request, handler)

    async def cancel_subscription(self, request: Request, sub_id: str) -> dict[str, Any]:
        Params(await self.emu.form(request), {"cancellation_details", "invoice_now", "prorate"})
        sub = self.emu.get("subscription", sub_id)
        if sub["status"] == "canceled":
            raise missing("subscription", sub_id)
        ts = now()
        sub.update(status="canceled", canceled_at=ts, ended_at=ts)
        sub["cancellation_details"]["reason"] = "cancellation_requested"
        self.emu.save(sub)
        self.emu.emit("customer.subscription.deleted", sub, request)
        return sub
