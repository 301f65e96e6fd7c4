"""Stripe emulator state shared by the route classes: :class:`Emulator` holds the store, the state
transitions the public routes and the ``/_sandbox`` acts share (events, finalize, bill, pay), and the
request pipeline (API key, ``Stripe-Version``, form decoding, idempotency, list pages, ``expand[]``)."""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.kit import IdempotencyGuard, Store, new_id
from sandbox.stripe.form import FormError, decode_form
from sandbox.stripe.objects import (
    API_VERSION,
    Params,
    StripeError,
    bad,
    created_matches,
    error_response,
    expand,
    invoice_object,
    line_from_subscription_item,
    missing,
    now,
    page_limit,
    paginate,
    price_object,
    public,
    recalculate,
)
from sandbox.stripe.signing import stripe_signature_header

IDEMPOTENCY_MISMATCH = ("Keys for idempotent requests can only be used with the same parameters they were first "
                        "used with. Try using a key other than '{key}' if you meant to execute a different "
                        "request.")


class Emulator:
    """State transitions shared by the public routes and the ``/_sandbox`` acts, and the request pipeline."""

    def __init__(self, app: FastAPI, store: Store, config: Any) -> None:
        self.app = app
        self.store = store
        self.config = config  # the adapter's settings: its API key and webhook secret
        self.guard = IdempotencyGuard(store, lambda key: error_response(
            400, IDEMPOTENCY_MISMATCH.format(key=key), type_="idempotency_error"))

    # -- records -------------------------------------------------------------------------------
    def get(self, kind: str, object_id: str, param: str = "id") -> dict[str, Any]:
        obj = self.store.get(kind, object_id)
        if obj is None or obj.get("deleted"):
            raise missing(kind, object_id, param)
        return obj

    def save(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.store.put(obj["object"], obj["id"], obj)

    def newest_first(self, kind: str, where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        items = self.store.list(kind, where=lambda o: not o.get("deleted") and (where is None or where(o)))
        return list(reversed(items))

    # -- events ------------------------------------------------------------------------------------
    def emit(self, type_: str, obj: dict[str, Any], request: Request | None,
             previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store an event and deliver it, signed, to every webhook target.

        Like Stripe, only ``*.updated`` events carry ``data.previous_attributes``."""
        targets = self.app.state.control.webhooks.targets
        data: dict[str, Any] = {"object": json.loads(json.dumps(public(obj)))}
        if previous is not None and type_.endswith(".updated"):
            data["previous_attributes"] = previous
        event: dict[str, Any] = {
            "id": new_id("evt_", self.store), "object": "event", "api_version": API_VERSION, "created": now(),
            "data": data, "livemode": False, "pending_webhooks": sum(1 for t in targets if not t.drop),
            "request": {"id": getattr(request.state, "request_id", None) if request else None,
                        "idempotency_key": request.headers.get("Idempotency-Key") if request else None},
            "type": type_,
        }
        self.store.put("event", event["id"], event)
        body = json.dumps(event, indent=2).encode()
        secret = self.config.webhook_secret
        self.app.state.control.webhooks.emit(
            body, lambda _url, raw: {"Stripe-Signature": stripe_signature_header(secret, raw)})
        return event

    # -- invoices ----------------------------------------------------------------------------------
    def finalize(self, invoice: dict[str, Any], request: Request | None) -> list[str]:
        if invoice["status"] != "draft":
            raise bad("This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                      code="invoice_not_editable")
        customer = self.store.get("customer", invoice["customer"]) or {}
        sequence = int(customer.get("next_invoice_sequence") or 1)
        if customer:
            customer["next_invoice_sequence"] = sequence + 1
            self.save(customer)
        ts = now()
        recalculate(invoice)
        invoice.update(status="open", number=f"{customer.get('invoice_prefix', 'SANDBOX')}-{sequence:04d}",
                       effective_at=ts, hosted_invoice_url=f"https://invoice.stripe.com/i/sandbox/{invoice['id']}",
                       invoice_pdf=f"https://pay.stripe.com/invoice/sandbox/{invoice['id']}/pdf")
        invoice["status_transitions"]["finalized_at"] = ts
        events = [self.emit("invoice.finalized", invoice, request)["id"]]
        if invoice["amount_remaining"] == 0:  # nothing to collect: Stripe marks it paid at once
            previous = self.mark_paid(invoice)
            events.append(self.emit("invoice.paid", invoice, request)["id"])
            events.append(self.emit("invoice.updated", invoice, request, previous)["id"])
        self.save(invoice)
        return events

    def mark_paid(self, invoice: dict[str, Any]) -> dict[str, Any]:
        previous = {"paid": invoice["paid"], "status": invoice["status"]}
        invoice.update(status="paid", paid=True)
        invoice["status_transitions"]["paid_at"] = now()
        return previous

    def bill_period(self, sub: dict[str, Any], period: tuple[int, int], reason: str,
                    request: Request | None) -> dict[str, Any]:
        """Invoice one period of a subscription and finalize it (no hour of grace as real Stripe has)."""
        customer = self.get("customer", sub["customer"])
        invoice = invoice_object(new_id("in_", self.store), customer, currency_code=sub["currency"],
                                 collection_method=sub["collection_method"],
                                 due_date=now() + 86400 * int(sub["days_until_due"] or 30), auto_advance=True,
                                 metadata={}, description=sub["description"], billing_reason=reason,
                                 subscription=sub, period=period)
        for item in sub["items"]["data"]:
            product = self.store.get("product", item["price"]["product"]) or {"name": item["price"]["product"]}
            line = line_from_subscription_item(new_id("il_", self.store), sub, item, product["name"], period)
            invoice["lines"]["data"].append(line)
        recalculate(invoice)
        self.save(invoice)
        self.emit("invoice.created", invoice, request)
        self.finalize(invoice, request)
        sub["latest_invoice"] = invoice["id"]
        self.save(sub)
        return invoice

    def pay(self, invoice: dict[str, Any], amount: int, request: Request | None,
            *, out_of_band: bool = False) -> list[str]:
        """Record ``amount`` received; emits payment_succeeded (not out of band) and paid when settled. An
        uncollectible invoice can still be paid, as on Stripe."""
        if invoice["status"] not in ("open", "uncollectible"):
            raise bad(f"Invoice {invoice['id']} is {invoice['status']}; only open or uncollectible invoices can "
                      "be paid.",
                      code="invoice_not_open")
        if amount <= 0 or amount > invoice["amount_remaining"]:
            raise bad(f"Amount must be between 1 and the {invoice['amount_remaining']} that remains.", "amount")
        previous: dict[str, Any] = {"amount_paid": invoice["amount_paid"],
                                    "amount_remaining": invoice["amount_remaining"]}
        invoice["amount_paid"] += amount
        invoice["amount_remaining"] -= amount
        events: list[str] = []
        if out_of_band:
            invoice["paid_out_of_band"] = True
        else:
            invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1,
                           charge=new_id("ch_", self.store))
        if invoice["amount_remaining"] == 0:
            previous.update(self.mark_paid(invoice))
            invoice["next_payment_attempt"] = None
        self.save(invoice)
        if not out_of_band:
            events.append(self.emit("invoice.payment_succeeded", invoice, request)["id"])
        if invoice["status"] == "paid":
            events.append(self.emit("invoice.paid", invoice, request)["id"])
        events.append(self.emit("invoice.updated", invoice, request, previous)["id"])
        return events


    def new_price(self, *, product: str, currency_code: str, unit_amount: int, recurring: dict[str, Any] | None,
                  metadata: dict[str, str], nickname: str | None = None, active: bool = True,
                  lookup_key: str | None = None, param: str = "product") -> dict[str, Any]:
        """Save a price of an existing product (``param`` names the product in the error when it is not)."""
        self.get("product", product, param)
        return self.save(price_object(new_id("price_", self.store), product=product, currency_code=currency_code,
                                      unit_amount=unit_amount, recurring=recurring, metadata=metadata,
                                      nickname=nickname, active=active, lookup_key=lookup_key))

    # -- the request pipeline ------------------------------------------------------------------------
    async def stripe_headers(self, request: Request,
                             call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Middleware: a request ID, ``expand[]`` applied, and Stripe's response headers on ``/v1``."""
        request.state.request_id = "req_" + secrets.token_hex(7)
        request.state.expand = None
        response = await call_next(request)
        paths = request.state.expand
        if paths is None and request.method == "GET" and "expand" in request.url.query:
            try:
                paths = decode_form(request.url.query).get("expand")
            except FormError:
                paths = None
        if paths and response.status_code == 200 and request.url.path.startswith("/v1"):
            response = await self.expanded(response, paths if isinstance(paths, list) else [paths])
        if request.url.path.startswith("/v1"):
            response.headers["Request-Id"] = request.state.request_id
            response.headers["Stripe-Version"] = request.headers.get("Stripe-Version") or API_VERSION
            if key := request.headers.get("Idempotency-Key"):
                response.headers["Idempotency-Key"] = key
        return response

    async def expanded(self, response: Response, paths: list[str]) -> Response:
        """The answer with ``expand[]`` applied (the handlers answer with IDs, as Stripe stores them)."""
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        store = self.store
        try:
            data = expand(json.loads(body), [str(p) for p in paths],
                          lambda kind, object_id: None if (o := store.get(kind, object_id)) is None
                          or o.get("deleted") else o)
        except StripeError as exc:
            return exc.response()
        return JSONResponse(data, headers=headers)

    def authenticate(self, request: Request) -> str:
        """The API key (Bearer, or Basic with the key as user name) and a well-formed ``Stripe-Version``."""
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credential.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credential).decode().split(":", 1)[0]
            except ValueError:
                key = ""
        if not header or not key:
            raise StripeError(401, "You did not provide an API key. You need to provide your API key in the "
                                   "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                                   "YOUR_SECRET_KEY').", headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
        if not secrets.compare_digest(key, self.config.api_key):
            raise StripeError(401, f"Invalid API Key provided: {_mask(key)}",
                              headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
        version = request.headers.get("Stripe-Version")
        if version is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.\w+)?", version):
            raise bad(f"Invalid Stripe API version: {version}", code="invalid_stripe_api_version")
        return key

    async def form(self, request: Request) -> dict[str, Any]:
        """The form-encoded body (its ``expand`` remembered for the middleware)."""
        try:
            data = decode_form((await request.body()).decode())
        except FormError as exc:
            raise bad(str(exc), exc.key) from exc
        request.state.expand = data.get("expand")
        return data

    def query(self, request: Request) -> dict[str, Any]:
        """The decoded query string."""
        try:
            return decode_form(request.url.query)
        except FormError as exc:
            raise bad(str(exc), exc.key) from exc

    async def mutate(self, request: Request, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
        """Run a POST under the idempotency guard; a validation error propagates and is not remembered."""
        params = await self.form(request)
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > 255:
            raise bad("Idempotency-Key must be at most 255 characters long.")

        async def run() -> Response:
            return JSONResponse(public(handler(params)))

        return await self.guard.run(scope=self.authenticate(request), key=key,
                                    fingerprint_parts=[request.method, request.url.path, params], handler=run)

    def listing(self, request: Request, kind: str, url: str, filters: dict[str, str],
                where: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """A list endpoint: ``filters`` maps query param -> object field for equality filters."""
        q = self.query(request)
        Params(q, {"limit", "starting_after", "ending_before", "created", *filters})

        def keep(obj: dict[str, Any]) -> bool:
            for param, field_name in filters.items():
                if param in q and field_name and str(obj.get(field_name)) != q[param]:
                    return False
            # invoice items carry ``date`` instead of ``created``; Stripe's ``created`` filter applies to it
            if not created_matches(obj.get("created", obj.get("date", 0)), q.get("created")):
                return False
            return where is None or where(obj, q)

        live = (lambda o: not o.get("deleted") and keep(o))  # noqa: E731
        if not q.get("ending_before"):  # newest first from the top or a cursor: read as far as the page goes
            after = q.get("starting_after") or None
            found = self.store.newest_page(kind, page_limit(q), after=after, where=live)
            if found is None:
                raise missing(kind, str(after), "starting_after")
            data, has_more = found
            return {"object": "list", "data": [public(obj) for obj in data], "has_more": has_more, "url": url}
        page: dict[str, Any] = {}

        def pick(oldest_first: list[dict[str, Any]]) -> list[dict[str, Any]]:
            page.update(paginate(list(reversed(oldest_first)), q, url, kind))
            return list(page["data"])

        chosen = self.store.page(kind, pick, where=live)
        return {**page, "data": [public(obj) for obj in chosen]}


def _mask(key: str) -> str:
    return key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "*" * len(key)

