"""The Stripe emulator: ``/v1/...`` as Stripe serves it (API version 2023-08-16), plus ``/_sandbox`` acts.

Behaviour worth knowing (decisions where the real API has more to it):

* Auth: ``Authorization: Bearer <key>`` (or Basic with the key as user name); anything else is a 401
  ``invalid_request_error``. ``Stripe-Version`` is echoed; a malformed one is a 400.
* Idempotency: every POST with ``Idempotency-Key`` is replayed (``Idempotent-Replayed: true``); the same
  key with other parameters or on another endpoint is a 400 ``idempotency_error``. Keys are scoped to
  the API key. Requests refused by validation are not remembered, as Stripe documents.
* 429 (fault ``rate_limit_per_second``): Stripe's body (``type=invalid_request_error``,
  ``code=rate_limit``; the 2023-08-16 spec has no ``rate_limit_error`` type), ``Stripe-Should-Retry:
  false`` like the real API, and a ``Retry-After`` in whole seconds, which real Stripe does not send.
* Subscriptions (``collection_method=send_invoice`` only; there are no payment methods here): with no
  future ``trial_end``/``billing_cycle_anchor`` the first period is invoiced at once and the invoice
  finalized (``invoice.created`` + ``invoice.finalized``); with a future ``trial_end`` the subscription
  is ``trialing`` and nothing is billed until ``POST /_sandbox/subscriptions/{id}/cycle``; a future
  ``billing_cycle_anchor`` bills nothing for the stub period. ``backdate_start_date`` starts the first
  period at that date. Recurring items must share currency and interval (as Stripe requires).
* Partial payments (pre-"basil" there is no invoice-payment object): ``POST /_sandbox/invoices/{id}/
  payments`` adds to ``amount_paid``, lowers ``amount_remaining``, sets ``charge`` to a new ``ch_`` ID
  and emits ``invoice.payment_succeeded``; when nothing remains the invoice is ``paid`` and
  ``invoice.paid`` follows, then ``invoice.updated``. As with Stripe, only ``*.updated`` events carry
  ``data.previous_attributes``: a receiver learns a payment's amount from ``amount_paid`` against what
  it has already recorded.
* Credit notes on an open invoice are pre-payment (lower ``amount_due``/``amount_remaining``; a fully
  credited invoice becomes ``paid``); on a paid invoice post-payment, credited to the customer balance
  unless ``refund_amount``/``out_of_band_amount`` say otherwise.
* Webhooks: every event is stored (``GET /v1/events``) and delivered to the registered targets with
  ``Stripe-Signature: t=..,v1=..,v0=..`` (HMAC-SHA256 of ``"{t}.{body}"`` with the webhook secret).
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.kit import IdempotencyGuard, Store, VendorStyle, create_sandbox_app, new_id
from sandbox.stripe.form import FormError, decode_form
from sandbox.stripe.objects import (
    API_VERSION,
    Params,
    StripeError,
    add_interval,
    address,
    bad,
    check_metadata,
    created_matches,
    currency,
    customer_object,
    error_response,
    expand,
    invoice_object,
    line_from_item,
    line_from_subscription_item,
    merge_metadata,
    missing,
    now,
    paginate,
    price_object,
    product_object,
    public,
    recalculate,
    to_int,
)
from sandbox.stripe.signing import stripe_signature_header
from settings import Settings

IDEMPOTENCY_MISMATCH = ("Keys for idempotent requests can only be used with the same parameters they were first "
                        "used with. Try using a key other than '{key}' if you meant to execute a different "
                        "request.")
RATE_LIMIT_MESSAGE = ("Request rate limit exceeded. You can learn more about rate limits here "
                      "https://stripe.com/docs/rate-limits.")
PAST_DUE_DATE = "Invoice due dates must be in the future."
CREDIT_NOTE_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


def _style() -> VendorStyle:
    def error(status: int, message: str) -> Response:
        return error_response(status, message)

    def rate_limited(wait: float) -> Response:
        return error_response(429, RATE_LIMIT_MESSAGE, code="rate_limit",
                              headers={"Retry-After": str(max(1, math.ceil(wait))), "Stripe-Should-Retry": "false"})

    return VendorStyle(vendor="stripe", error=error, rate_limited=rate_limited)


class PaymentAct(BaseModel):
    """The customer pays (part of) an open invoice."""

    amount: int | None = Field(default=None, gt=0, description="minor units; all that remains when absent")


class PaymentFailureAct(BaseModel):
    reason: str | None = None


class Emulator:
    """State transitions shared by the public routes and the ``/_sandbox`` acts."""

    def __init__(self, app: FastAPI, store: Store, settings: Settings) -> None:
        self.app = app
        self.store = store
        self.settings = settings

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
        secret = self.settings.stripe_webhook_secret
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
        """Record ``amount`` received; emits payment_succeeded (not out of band) and paid when settled."""
        if invoice["status"] != "open":
            raise bad(f"Invoice {invoice['id']} is {invoice['status']}; only open invoices can be paid.",
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


def _mask(key: str) -> str:
    return key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "*" * len(key)


def create_app(settings: Settings, *, database_url: str = "sqlite://") -> FastAPI:
    """The Stripe emulator app (``sandbox.serve.build_app("stripe", settings)``)."""
    store = Store(database_url)
    app = create_sandbox_app(style=_style(), store=store, title="Stripe sandbox")
    emu = Emulator(app, store, settings)
    guard = IdempotencyGuard(store, lambda key: error_response(
        400, IDEMPOTENCY_MISMATCH.format(key=key), type_="idempotency_error"))

    @app.exception_handler(StripeError)
    async def stripe_error(_request: Request, exc: StripeError) -> Response:
        return exc.response()

    @app.middleware("http")
    async def stripe_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
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
            response = await expanded(response, paths if isinstance(paths, list) else [paths])
        if request.url.path.startswith("/v1"):
            response.headers["Request-Id"] = request.state.request_id
            response.headers["Stripe-Version"] = request.headers.get("Stripe-Version") or API_VERSION
            if key := request.headers.get("Idempotency-Key"):
                response.headers["Idempotency-Key"] = key
        return response

    async def expanded(response: Response, paths: list[str]) -> Response:
        """The answer with ``expand[]`` applied (the handlers answer with IDs, as Stripe stores them)."""
        body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        try:
            data = expand(json.loads(body), [str(p) for p in paths],
                          lambda kind, object_id: None if (o := store.get(kind, object_id)) is None
                          or o.get("deleted") else o)
        except StripeError as exc:
            return exc.response()
        return JSONResponse(data, headers=headers)

    def authenticate(request: Request) -> str:
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
        if not secrets.compare_digest(key, settings.stripe_api_key):
            raise StripeError(401, f"Invalid API Key provided: {_mask(key)}",
                              headers={"WWW-Authenticate": 'Basic realm="Stripe"'})
        version = request.headers.get("Stripe-Version")
        if version is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.\w+)?", version):
            raise bad(f"Invalid Stripe API version: {version}", code="invalid_stripe_api_version")
        return key

    router = APIRouter(dependencies=[Depends(authenticate)])

    async def form(request: Request) -> dict[str, Any]:
        try:
            data = decode_form((await request.body()).decode())
        except FormError as exc:
            raise bad(str(exc), exc.key) from exc
        request.state.expand = data.get("expand")
        return data

    def query(request: Request) -> dict[str, Any]:
        try:
            return decode_form(request.url.query)
        except FormError as exc:
            raise bad(str(exc), exc.key) from exc

    async def mutate(request: Request, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
        """Run a POST under the idempotency guard; a validation error propagates and is not remembered."""
        params = await form(request)
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > 255:
            raise bad("Idempotency-Key must be at most 255 characters long.")

        async def run() -> Response:
            return JSONResponse(public(handler(params)))

        return await guard.run(scope=authenticate(request), key=key,
                               fingerprint_parts=[request.method, request.url.path, params], handler=run)

    def listing(request: Request, kind: str, url: str, filters: dict[str, str],
                where: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """A list endpoint: ``filters`` maps query param -> object field for equality filters."""
        q = query(request)
        Params(q, {"limit", "starting_after", "ending_before", "created", *filters})

        def keep(obj: dict[str, Any]) -> bool:
            for param, field_name in filters.items():
                if param in q and field_name and str(obj.get(field_name)) != q[param]:
                    return False
            if not created_matches(obj["created"], q.get("created")):
                return False
            return where is None or where(obj, q)

        page = paginate(emu.newest_first(kind, keep), q, url, kind)
        page["data"] = [public(obj) for obj in page["data"]]
        return page

    # -- customers -------------------------------------------------------------------------------
    customer_fields = {"address", "balance", "description", "email", "invoice_prefix", "metadata", "name", "phone",
                       "preferred_locales", "tax_exempt"}

    @router.post("/v1/customers")
    async def create_customer(request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, customer_fields)
            prefix = secrets.token_hex(4).upper()
            return emu.save(customer_object(new_id("cus_", store), p, prefix))
        return await mutate(request, handler)

    @router.get("/v1/customers")
    async def list_customers(request: Request) -> dict[str, Any]:
        return listing(request, "customer", "/v1/customers", {"email": "email"})

    @router.get("/v1/customers/search")
    async def search_customers(request: Request) -> dict[str, Any]:
        q = query(request)
        p = Params(q, {"query", "limit", "page"})
        clauses = parse_search(p.str("query", required=True) or "")
        matches = [c for c in emu.newest_first("customer") if search_matches(c, clauses)]
        limit = p.int("limit") or 10
        token = p.str("page")
        try:
            offset = int(base64.urlsafe_b64decode(token).decode()) if token else 0
        except ValueError as exc:
            raise bad("Invalid page token.", "page") from exc
        page = matches[offset: offset + limit]
        more = offset + limit < len(matches)
        return {"object": "search_result", "data": page, "has_more": more, "total_count": len(matches),
                "next_page": base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None,
                "url": "/v1/customers/search"}

    @router.get("/v1/customers/{customer_id}")
    async def get_customer(customer_id: str) -> dict[str, Any]:
        obj = store.get("customer", customer_id)
        if obj is None:
            raise missing("customer", customer_id)
        return obj  # a deleted customer is still retrievable as ``{"deleted": true}``

    @router.post("/v1/customers/{customer_id}")
    async def update_customer(request: Request, customer_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, customer_fields - {"invoice_prefix"})
            obj = emu.get("customer", customer_id)
            for name in ("description", "email", "name", "phone"):
                if name in p:
                    obj[name] = p.str(name)
            if "address" in p:
                obj["address"] = address(p.raw("address"))
            obj["metadata"] = merge_metadata(obj["metadata"], p.metadata(), p.raw("metadata"))
            return emu.save(obj)
        return await mutate(request, handler)

    @router.delete("/v1/customers/{customer_id}")
    async def delete_customer(customer_id: str) -> dict[str, Any]:
        emu.get("customer", customer_id)
        store.put("customer", customer_id, {"id": customer_id, "object": "customer", "deleted": True})
        return {"id": customer_id, "object": "customer", "deleted": True}

    # -- products ----------------------------------------------------------------------------------
    @router.post("/v1/products")
    async def create_product(request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"active", "description", "id", "metadata", "name", "unit_label"})
            pid = p.str("id") or new_id("prod_", store)
            if store.get("product", pid) is not None:
                raise bad("Product already exists.", "id", "resource_already_exists")
            return emu.save(product_object(pid, p))
        return await mutate(request, handler)

    @router.get("/v1/products")
    async def list_products(request: Request) -> dict[str, Any]:
        return listing(request, "product", "/v1/products", {"active": ""},
                       where=lambda o, q: "active" not in q or str(o["active"]).lower() == q["active"])

    @router.get("/v1/products/{product_id}")
    async def get_product(product_id: str) -> dict[str, Any]:
        return emu.get("product", product_id)

    @router.post("/v1/products/{product_id}")
    async def update_product(request: Request, product_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"active", "description", "metadata", "name", "unit_label"})
            obj = emu.get("product", product_id)
            if (active := p.bool("active")) is not None:
                obj["active"] = active
            for name in ("description", "name", "unit_label"):
                if name in p:
                    obj[name] = p.str(name)
            obj["metadata"] = merge_metadata(obj["metadata"], p.metadata(), p.raw("metadata"))
            obj["updated"] = now()
            return emu.save(obj)
        return await mutate(request, handler)

    # -- prices ------------------------------------------------------------------------------------
    def recurring_of(value: Any, param: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise bad("Invalid recurring: must be a hash", param)
        unknown = set(value) - {"interval", "interval_count", "usage_type"}
        if unknown:
            key = sorted(unknown)[0]
            raise bad(f"Received unknown parameter: {param}[{key}]", f"{param}[{key}]", "parameter_unknown")
        interval = value.get("interval")
        if interval not in ("day", "week", "month", "year"):
            raise bad("Invalid interval: must be one of day, week, month, or year", f"{param}[interval]")
        count = to_int(value.get("interval_count", "1"), f"{param}[interval_count]", minimum=1)
        if (interval == "month" and count > 12) or (interval == "year" and count > 1):
            raise bad("The maximum billing frequency is one year.", f"{param}[interval_count]")
        return {"interval": interval, "interval_count": count}

    def new_price(*, product: str, currency_code: str, unit_amount: int, recurring: dict[str, Any] | None,
                  metadata: dict[str, str], nickname: str | None = None, active: bool = True,
                  lookup_key: str | None = None, param: str = "product") -> dict[str, Any]:
        emu.get("product", product, param)
        return emu.save(price_object(new_id("price_", store), product=product, currency_code=currency_code,
                                     unit_amount=unit_amount, recurring=recurring, metadata=metadata,
                                     nickname=nickname, active=active, lookup_key=lookup_key))

    @router.post("/v1/prices")
    async def create_price(request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"active", "currency", "lookup_key", "metadata", "nickname", "product",
                              "product_data", "recurring", "tax_behavior", "unit_amount", "unit_amount_decimal"})
            code = currency(p.str("currency", required=True))
            product = p.str("product")
            if product is None:
                product_data = p.raw("product_data")
                if not isinstance(product_data, dict) or not product_data.get("name"):
                    raise bad("You must specify either product or product_data.", "product",
                              "parameter_missing")
                product = emu.save(product_object(new_id("prod_", store), Params(
                    product_data, {"name", "metadata", "active", "unit_label"})))["id"]
            amount = p.int("unit_amount", minimum=0)
            if amount is None:
                decimal = p.str("unit_amount_decimal")
                if decimal is None or not re.fullmatch(r"\d+", decimal):
                    raise bad("Missing required param: unit_amount.", "unit_amount", "parameter_missing")
                amount = int(decimal)
            return new_price(product=product, currency_code=code, unit_amount=amount,
                             recurring=recurring_of(p.raw("recurring"), "recurring"),
                             metadata=p.metadata() or {}, nickname=p.str("nickname"),
                             active=p.bool("active") is not False, lookup_key=p.str("lookup_key"))
        return await mutate(request, handler)

    @router.get("/v1/prices")
    async def list_prices(request: Request) -> dict[str, Any]:
        return listing(request, "price", "/v1/prices", {"product": "product", "currency": "currency",
                                                         "active": ""},
                       where=lambda o, q: "active" not in q or str(o["active"]).lower() == q["active"])

    @router.get("/v1/prices/{price_id}")
    async def get_price(price_id: str) -> dict[str, Any]:
        return emu.get("price", price_id)

    @router.post("/v1/prices/{price_id}")
    async def update_price(request: Request, price_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"active", "lookup_key", "metadata", "nickname", "tax_behavior"})
            obj = emu.get("price", price_id)
            if (active := p.bool("active")) is not None:
                obj["active"] = active
            if "nickname" in p:
                obj["nickname"] = p.str("nickname")
            obj["metadata"] = merge_metadata(obj["metadata"], p.metadata(), p.raw("metadata"))
            return emu.save(obj)
        return await mutate(request, handler)

    # -- subscriptions -----------------------------------------------------------------------------
    def subscription_items(sub_id: str, raw: Any) -> list[dict[str, Any]]:
        if not isinstance(raw, list) or not raw:
            raise bad("Missing required param: items.", "items", "parameter_missing")
        items: list[dict[str, Any]] = []
        for i, entry in enumerate(raw):
            param = f"items[{i}]"
            if not isinstance(entry, dict):
                raise bad(f"Invalid hash: {param}", param)
            ip = Params(entry, {"price", "price_data", "quantity", "metadata"})
            if price_id := ip.str("price"):
                price = emu.get("price", price_id, f"{param}[price]")
            elif isinstance(data := ip.raw("price_data"), dict):
                dp = Params(data, {"currency", "product", "recurring", "unit_amount", "unit_amount_decimal",
                                   "tax_behavior"})
                price = new_price(product=dp.str("product", required=True) or "",
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
            items.append({"id": new_id("si_", store), "object": "subscription_item", "billing_thresholds": None,
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

    @router.post("/v1/subscriptions")
    async def create_subscription(request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"backdate_start_date", "billing_cycle_anchor", "cancel_at", "collection_method",
                              "currency", "customer", "days_until_due", "description", "items", "metadata",
                              "payment_behavior", "proration_behavior", "trial_end"})
            customer = emu.get("customer", p.str("customer", required=True) or "", "customer")
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
            sub_id = new_id("sub_", store)
            items = subscription_items(sub_id, p.raw("items"))
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
            emu.save(sub)
            emu.emit("customer.subscription.created", sub, request)
            if bill_now:
                emu.bill_period(sub, period, "subscription_create", request)
            return emu.get("subscription", sub_id)
        return await mutate(request, handler)

    @router.get("/v1/subscriptions")
    async def list_subscriptions(request: Request) -> dict[str, Any]:
        # Stripe leaves canceled subscriptions out unless status=canceled or all is asked for.
        return listing(request, "subscription", "/v1/subscriptions", {"customer": "customer", "status": ""},
                       where=lambda o, q: q.get("status") == "all" or o["status"] == q.get("status")
                       or ("status" not in q and o["status"] != "canceled"))

    @router.get("/v1/subscriptions/{sub_id}")
    async def get_subscription(sub_id: str) -> dict[str, Any]:
        return emu.get("subscription", sub_id)

    @router.post("/v1/subscriptions/{sub_id}")
    async def update_subscription(request: Request, sub_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"cancel_at", "days_until_due", "description", "metadata"})
            sub = emu.get("subscription", sub_id)
            if sub["status"] == "canceled":
                raise bad("A canceled subscription can only update its cancellation_details and metadata.")
            if "cancel_at" in p:
                sub["cancel_at"] = p.int("cancel_at")
            if "days_until_due" in p:
                sub["days_until_due"] = p.int("days_until_due", minimum=0)
            if "description" in p:
                sub["description"] = p.str("description")
            sub["metadata"] = merge_metadata(sub["metadata"], p.metadata(), p.raw("metadata"))
            emu.save(sub)
            emu.emit("customer.subscription.updated", sub, request)
            return sub
        return await mutate(request, handler)

    # -- subscription items (amendments change quantity and price, with prorations) ----------------
    def item_and_subscription(item_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        subs = store.list("subscription", where=lambda s: any(i["id"] == item_id for i in s["items"]["data"]))
        if not subs:
            raise missing("subscription_item", item_id)
        sub = subs[0]
        return next(i for i in sub["items"]["data"] if i["id"] == item_id), sub

    def prorate(sub: dict[str, Any], item: dict[str, Any], old: tuple[dict[str, Any], int], behavior: str,
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
        customer = emu.get("customer", sub["customer"])
        invoice = None
        if behavior == "always_invoice":
            invoice = invoice_object(new_id("in_", store), customer, currency_code=sub["currency"],
                                     collection_method=sub["collection_method"],
                                     due_date=ts + 86400 * int(sub["days_until_due"] or 30), auto_advance=True,
                                     metadata={}, description=None, billing_reason="subscription_update",
                                     subscription=sub, period=(ts, end))
        for label, price, quantity, amount in (
                ("Unused time on", old_price, old_quantity, -round(old_amount * fraction)),
                ("Remaining time on", item["price"], item["quantity"], round(new_amount * fraction))):
            if amount == 0:
                continue
            product = store.get("product", price["product"]) or {"name": price["product"]}
            pending = {
                "id": new_id("ii_", store), "object": "invoiceitem", "amount": amount, "currency": sub["currency"],
                "customer": sub["customer"], "date": ts, "description": f"{label} {quantity} × {product['name']}",
                "discountable": False, "discounts": [], "invoice": invoice["id"] if invoice else None,
                "livemode": False, "metadata": {}, "period": {"start": ts, "end": end}, "price": price,
                "proration": True, "quantity": quantity, "subscription": sub["id"],
                "subscription_item": item["id"], "tax_rates": [], "test_clock": None,
                "unit_amount": amount, "unit_amount_decimal": str(amount),
            }
            emu.save(pending)
            if invoice is not None:
                line = line_from_item(pending)
                line.update(proration=True, subscription=sub["id"], subscription_item=item["id"])
                invoice["lines"]["data"].append(line)
        if invoice is not None:
            recalculate(invoice)
            emu.save(invoice)
            emu.emit("invoice.created", invoice, request)
            emu.finalize(invoice, request)

    @router.get("/v1/subscription_items/{item_id}")
    async def get_subscription_item(item_id: str) -> dict[str, Any]:
        return item_and_subscription(item_id)[0]

    @router.post("/v1/subscription_items/{item_id}")
    async def update_subscription_item(request: Request, item_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"billing_thresholds", "metadata", "off_session", "payment_behavior", "price",
                              "price_data", "proration_behavior", "proration_date", "quantity", "tax_rates"})
            item, sub = item_and_subscription(item_id)
            if sub["status"] == "canceled":
                raise bad("A canceled subscription can only update its cancellation_details and metadata.")
            behavior = p.enum("proration_behavior", ("always_invoice", "create_prorations", "none"),
                              default="create_prorations") or "create_prorations"
            old = (item["price"], item["quantity"])
            if price_id := p.str("price"):
                price = emu.get("price", price_id, "price")
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
            prorate(sub, item, old, behavior, request)
            emu.save(sub)
            emu.emit("customer.subscription.updated", sub, request)
            return item
        return await mutate(request, handler)

    @router.delete("/v1/subscriptions/{sub_id}")
    async def cancel_subscription(request: Request, sub_id: str) -> dict[str, Any]:
        Params(await form(request), {"cancellation_details", "invoice_now", "prorate"})
        sub = emu.get("subscription", sub_id)
        if sub["status"] == "canceled":
            raise missing("subscription", sub_id)
        ts = now()
        sub.update(status="canceled", canceled_at=ts, ended_at=ts)
        sub["cancellation_details"]["reason"] = "cancellation_requested"
        emu.save(sub)
        emu.emit("customer.subscription.deleted", sub, request)
        return sub

    # -- invoice items -----------------------------------------------------------------------------
    @router.post("/v1/invoiceitems")
    async def create_invoice_item(request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"amount", "currency", "customer", "description", "discountable", "invoice",
                              "metadata", "period", "price", "quantity", "tax_behavior", "unit_amount",
                              "unit_amount_decimal"})
            customer = emu.get("customer", p.str("customer", required=True) or "", "customer")
            invoice = None
            if invoice_id := p.str("invoice"):
                invoice = emu.get("invoice", invoice_id, "invoice")
                if invoice["status"] != "draft":
                    raise bad("You can only add invoice items to draft invoices.", "invoice",
                              "invoice_not_editable")
            quantity = p.int("quantity", minimum=0)
            price = None
            if price_id := p.str("price"):
                price = emu.get("price", price_id, "price")
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
                "id": new_id("ii_", store), "object": "invoiceitem", "amount": unit * quantity, "currency": code,
                "customer": customer["id"], "date": ts, "description": p.str("description"),
                "discountable": p.bool("discountable") is not False, "discounts": [],
                "invoice": invoice["id"] if invoice else None, "livemode": False,
                "metadata": p.metadata() or {}, "period": {"start": ts, "end": ts}, "price": price,
                "proration": False, "quantity": quantity, "subscription": None, "tax_rates": [],
                "test_clock": None, "unit_amount": unit, "unit_amount_decimal": str(unit),
            }
            emu.save(item)
            if invoice is not None:
                invoice["lines"]["data"].append(line_from_item(item))
                recalculate(invoice)
                emu.save(invoice)
            emu.emit("invoiceitem.created", item, request)
            return item
        return await mutate(request, handler)

    @router.get("/v1/invoiceitems")
    async def list_invoice_items(request: Request) -> dict[str, Any]:
        return listing(request, "invoiceitem", "/v1/invoiceitems", {"customer": "customer", "invoice": "invoice"})

    @router.get("/v1/invoiceitems/{item_id}")
    async def get_invoice_item(item_id: str) -> dict[str, Any]:
        return emu.get("invoiceitem", item_id)

    @router.delete("/v1/invoiceitems/{item_id}")
    async def delete_invoice_item(request: Request, item_id: str) -> dict[str, Any]:
        item = emu.get("invoiceitem", item_id)
        if item["invoice"]:
            invoice = store.get("invoice", item["invoice"])
            if invoice and invoice["status"] != "draft":
                raise bad("You cannot delete an invoice item that is attached to an invoice that is no longer "
                          "editable.", code="invoice_not_editable")
            if invoice:
                invoice["lines"]["data"] = [li for li in invoice["lines"]["data"] if li.get("invoice_item") != item_id]
                recalculate(invoice)
                emu.save(invoice)
        store.delete("invoiceitem", item_id)
        emu.emit("invoiceitem.deleted", item, request)
        return {"id": item_id, "object": "invoiceitem", "deleted": True}

    # -- invoices ----------------------------------------------------------------------------------
    @router.post("/v1/invoices")
    async def create_invoice(request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"auto_advance", "collection_method", "currency", "customer", "days_until_due",
                              "description", "due_date", "footer", "metadata", "pending_invoice_items_behavior",
                              "subscription"})
            customer = emu.get("customer", p.str("customer", required=True) or "", "customer")
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
            invoice = invoice_object(new_id("in_", store), customer, currency_code=code, collection_method=method,
                                     due_date=due, auto_advance=bool(p.bool("auto_advance")),
                                     metadata=p.metadata() or {}, description=p.str("description"),
                                     billing_reason="manual")
            invoice["footer"] = p.str("footer")
            if behavior != "exclude":
                pending = store.list("invoiceitem", where=lambda i: i["customer"] == customer["id"]
                                     and i["invoice"] is None and i["currency"] == code)
                if behavior == "include_and_require" and not pending:
                    raise bad("Nothing to invoice for customer", code="invoice_no_customer_line_items")
                for item in pending:
                    item["invoice"] = invoice["id"]
                    emu.save(item)
                    invoice["lines"]["data"].append(line_from_item(item))
            recalculate(invoice)
            emu.save(invoice)
            emu.emit("invoice.created", invoice, request)
            return invoice
        return await mutate(request, handler)

    @router.get("/v1/invoices")
    async def list_invoices(request: Request) -> dict[str, Any]:
        return listing(request, "invoice", "/v1/invoices",
                       {"customer": "customer", "status": "status", "subscription": "subscription",
                        "collection_method": "collection_method"})

    @router.get("/v1/invoices/{invoice_id}")
    async def get_invoice(invoice_id: str) -> dict[str, Any]:
        return public(emu.get("invoice", invoice_id))

    @router.get("/v1/invoices/{invoice_id}/lines")
    async def list_invoice_lines(request: Request, invoice_id: str) -> dict[str, Any]:
        """Every line of the invoice, in invoice order, by cursor (``limit``/``starting_after``/``ending_before``)."""
        q = query(request)
        Params(q, {"limit", "starting_after", "ending_before"})
        invoice = emu.get("invoice", invoice_id)
        return paginate(list(invoice["lines"]["data"]), q, f"/v1/invoices/{invoice_id}/lines", "line_item")

    @router.post("/v1/invoices/{invoice_id}")
    async def update_invoice(request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"auto_advance", "description", "due_date", "footer", "metadata"})
            invoice = emu.get("invoice", invoice_id)
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
            saved = emu.save(invoice)
            changed = {k: v for k, v in before.items() if invoice.get(k) != v}
            if changed:  # Stripe sends invoice.updated with the previous values of what changed
                emu.emit("invoice.updated", invoice, request, changed)
            return saved
        return await mutate(request, handler)

    @router.delete("/v1/invoices/{invoice_id}")
    async def delete_invoice(request: Request, invoice_id: str) -> dict[str, Any]:
        invoice = emu.get("invoice", invoice_id)
        if invoice["status"] != "draft":
            raise bad("You can only delete draft invoices.", code="invoice_not_editable")
        for item in store.list("invoiceitem", where=lambda i: i["invoice"] == invoice_id):
            store.delete("invoiceitem", item["id"])
        store.put("invoice", invoice_id, {"id": invoice_id, "object": "invoice", "deleted": True})
        emu.emit("invoice.deleted", invoice, request)
        return {"id": invoice_id, "object": "invoice", "deleted": True}

    @router.post("/v1/invoices/{invoice_id}/finalize")
    async def finalize_invoice(request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"auto_advance"})
            invoice = emu.get("invoice", invoice_id)
            if (auto := p.bool("auto_advance")) is not None:
                invoice["auto_advance"] = auto
            emu.finalize(invoice, request)
            return emu.get("invoice", invoice_id)
        return await mutate(request, handler)

    @router.post("/v1/invoices/{invoice_id}/pay")
    async def pay_invoice(request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"forgive", "paid_out_of_band", "payment_method", "source", "off_session", "mandate"})
            invoice = emu.get("invoice", invoice_id)
            if invoice["status"] == "paid":
                raise bad("Invoice is already paid", code="invoice_already_paid")
            if not p.bool("paid_out_of_band"):
                raise StripeError(402, "This customer has no attached payment source or default payment method.",
                                  type_="card_error", code="invoice_payment_intent_requires_action")
            if invoice["status"] == "draft":
                emu.finalize(invoice, request)
                invoice = emu.get("invoice", invoice_id)
            if invoice["status"] == "open" and invoice["amount_remaining"] > 0:
                emu.pay(invoice, invoice["amount_remaining"], request, out_of_band=True)
            return emu.get("invoice", invoice_id)
        return await mutate(request, handler)

    def transition(invoice_id: str, request: Request, status: str, stamp: str, event: str) -> dict[str, Any]:
        invoice = emu.get("invoice", invoice_id)
        allowed = ("open", "uncollectible") if status == "void" else ("open",)
        if invoice["status"] not in allowed:
            raise bad(f"You can only mark {' or '.join(allowed)} invoices as {status}; this one is "
                      f"{invoice['status']}.", code="invoice_not_open")
        previous = {"status": invoice["status"]}
        invoice["status"] = status
        invoice["status_transitions"][stamp] = now()
        if status == "void":
            invoice["amount_remaining"] = 0
        emu.save(invoice)
        emu.emit(event, invoice, request)
        emu.emit("invoice.updated", invoice, request, previous)
        return invoice

    @router.post("/v1/invoices/{invoice_id}/void")
    async def void_invoice(request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            Params(data, set())
            return transition(invoice_id, request, "void", "voided_at", "invoice.voided")
        return await mutate(request, handler)

    @router.post("/v1/invoices/{invoice_id}/mark_uncollectible")
    async def mark_uncollectible(request: Request, invoice_id: str) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            Params(data, set())
            return transition(invoice_id, request, "uncollectible", "marked_uncollectible_at",
                              "invoice.marked_uncollectible")
        return await mutate(request, handler)

    # -- credit notes ------------------------------------------------------------------------------
    @router.post("/v1/credit_notes")
    async def create_credit_note(request: Request) -> Response:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            p = Params(data, {"amount", "credit_amount", "effective_at", "invoice", "lines", "memo", "metadata",
                              "out_of_band_amount", "reason", "refund_amount"})
            invoice = emu.get("invoice", p.str("invoice", required=True) or "", "invoice")
            if invoice["status"] not in ("open", "paid"):
                raise bad(f"Credit notes can only be issued for open or paid invoices; {invoice['id']} is "
                          f"{invoice['status']}.", "invoice")
            reason = p.enum("reason", CREDIT_NOTE_REASONS)
            cn_id = new_id("cn_", store)
            lines = credit_lines(cn_id, p.raw("lines"), invoice)
            amount = p.int("amount", minimum=1)
            if amount is None:
                amount = sum(line["amount"] for line in lines)
                if amount <= 0:
                    raise bad("Missing required param: amount or lines.", "amount", "parameter_missing")
            elif not lines:
                lines = [credit_line(new_id("cnli_", store), amount, "Credit", None)]
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
                customer = emu.get("customer", invoice["customer"])
                customer["balance"] -= credit
                emu.save(customer)
                balance_tx = new_id("cbtxn_", store)
            ts = now()
            note = {
                "id": cn_id, "object": "credit_note", "amount": amount, "amount_shipping": 0, "created": ts,
                "currency": invoice["currency"], "customer": invoice["customer"],
                "customer_balance_transaction": balance_tx, "discount_amount": 0, "discount_amounts": [],
                "effective_at": p.int("effective_at") or ts, "invoice": invoice["id"],
                "lines": {"object": "list", "data": lines, "has_more": False,
                          "url": f"/v1/credit_notes/{cn_id}/lines"},
                "livemode": False, "memo": p.str("memo"), "metadata": p.metadata() or {},
                "number": f"{invoice['number']}-CN-{store.next_number('cn:' + invoice['id']):02d}",
                "out_of_band_amount": out_of_band, "pdf": f"https://pay.stripe.com/credit_notes/sandbox/{cn_id}/pdf",
                "reason": reason, "refund": None, "shipping_cost": None, "status": "issued", "subtotal": amount,
                "subtotal_excluding_tax": amount, "tax_amounts": [], "total": amount, "total_excluding_tax": amount,
                "type": "pre_payment" if pre_payment else "post_payment", "voided_at": None,
            }
            emu.save(note)
            if pre_payment:
                invoice["pre_payment_credit_notes_amount"] += amount
                recalculate(invoice)
                previous = None
                if invoice["amount_remaining"] == 0:
                    previous = emu.mark_paid(invoice)
                    previous.update(amount_paid=invoice["amount_paid"])
                emu.save(invoice)
                if previous is not None:
                    emu.emit("invoice.paid", invoice, request)
                    emu.emit("invoice.updated", invoice, request, previous)
            else:
                invoice["post_payment_credit_notes_amount"] += amount
                emu.save(invoice)
            if pre_payment and previous is None:  # the amounts due changed: Stripe reports the invoice updated
                emu.emit("invoice.updated", invoice, request, {"amount_due": invoice["amount_due"] + amount,
                                                              "amount_remaining": invoice["amount_remaining"] + amount})
            emu.emit("credit_note.created", note, request)
            return note
        return await mutate(request, handler)

    def credit_line(line_id: str, amount: int, description: str | None,
                    invoice_line: str | None, quantity: int = 1) -> dict[str, Any]:
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

    def credit_lines(cn_id: str, raw: Any, invoice: dict[str, Any]) -> list[dict[str, Any]]:
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
                lines.append(credit_line(new_id("cnli_", store), amount, by_id[ref]["description"], ref, quantity))
            else:
                unit = lp.int("unit_amount", required=True, minimum=1) or 0
                lines.append(credit_line(new_id("cnli_", store), unit * quantity, lp.str("description"), None,
                                         quantity))
        return lines

    @router.get("/v1/credit_notes")
    async def list_credit_notes(request: Request) -> dict[str, Any]:
        return listing(request, "credit_note", "/v1/credit_notes", {"customer": "customer", "invoice": "invoice"})

    @router.get("/v1/credit_notes/{cn_id}")
    async def get_credit_note(cn_id: str) -> dict[str, Any]:
        return emu.get("credit_note", cn_id)

    # -- events ------------------------------------------------------------------------------------
    @router.get("/v1/events")
    async def list_events(request: Request) -> dict[str, Any]:
        return listing(request, "event", "/v1/events", {"type": "type"})

    @router.get("/v1/events/{event_id}")
    async def get_event(event_id: str) -> dict[str, Any]:
        return emu.get("event", event_id)

    @router.api_route("/v1/{rest:path}", methods=["GET", "POST", "DELETE", "PUT", "PATCH"])
    async def unknown_route(request: Request, rest: str) -> Response:
        return error_response(404, f"Unrecognized request URL ({request.method}: /v1/{rest}). Please see "
                                   "https://stripe.com/docs or we can help at https://support.stripe.com/.")

    app.include_router(router)

    # -- /_sandbox acts ------------------------------------------------------------------------------
    @app.post("/_sandbox/invoices/{invoice_id}/payments")
    async def sandbox_payment(request: Request, invoice_id: str, act: PaymentAct | None = None) -> Response:
        """The customer pays an open invoice, fully or partly (emits payment_succeeded, then paid)."""
        try:
            invoice = emu.get("invoice", invoice_id)
            amount = act.amount if act and act.amount is not None else invoice["amount_remaining"]
            events = emu.pay(invoice, amount, request)
        except StripeError as exc:
            return exc.response()
        invoice = emu.get("invoice", invoice_id)
        return JSONResponse({"invoice": invoice, "charge": invoice["charge"], "amount": amount, "events": events})

    @app.post("/_sandbox/invoices/{invoice_id}/payment_failure")
    async def sandbox_payment_failure(request: Request, invoice_id: str,
                                      act: PaymentFailureAct | None = None) -> Response:
        """A collection attempt on an open invoice fails (emits invoice.payment_failed)."""
        try:
            invoice = emu.get("invoice", invoice_id)
            if invoice["status"] != "open":
                raise bad(f"Invoice {invoice_id} is {invoice['status']}; only open invoices can fail payment.")
        except StripeError as exc:
            return exc.response()
        previous = {"attempt_count": invoice["attempt_count"], "attempted": invoice["attempted"]}
        invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1,
                       charge=new_id("ch_", store), next_payment_attempt=now() + 3 * 86400)
        emu.save(invoice)
        event = emu.emit("invoice.payment_failed", invoice, request)
        emu.emit("invoice.updated", invoice, request, previous)
        return JSONResponse({"invoice": invoice, "charge": invoice["charge"],
                             "reason": (act.reason if act else None) or "card_declined", "events": [event["id"]]})

    @app.post("/_sandbox/subscriptions/{sub_id}/cycle")
    async def sandbox_cycle(request: Request, sub_id: str) -> Response:
        """Bill the next period: the subscription moves on one interval; its invoice is created and finalized."""
        try:
            sub = emu.get("subscription", sub_id)
            if sub["status"] not in ("active", "trialing"):
                raise bad(f"Subscription {sub_id} is {sub['status']}; only active or trialing ones bill.")
        except StripeError as exc:
            return exc.response()
        recurring = sub["items"]["data"][0]["price"]["recurring"]
        start = sub["current_period_end"]
        if sub["cancel_at"] and start >= sub["cancel_at"]:
            sub.update(status="canceled", canceled_at=sub["cancel_at"], ended_at=sub["cancel_at"])
            emu.save(sub)
            emu.emit("customer.subscription.deleted", sub, request)
            return JSONResponse({"subscription": sub, "invoice": None})
        end = add_interval(start, recurring["interval"], recurring["interval_count"])
        reason = "subscription_create" if sub["status"] == "trialing" or sub["latest_invoice"] is None \
            else "subscription_cycle"
        sub.update(status="active", current_period_start=start, current_period_end=end)
        emu.save(sub)
        invoice = emu.bill_period(sub, (start, end), reason, request)
        return JSONResponse({"subscription": emu.get("subscription", sub_id),
                             "invoice": emu.get("invoice", invoice["id"])})

    return app


# -- search ------------------------------------------------------------------------------------------
_CLAUSE = re.compile(r"""\s*(-?)(metadata\[['"]([^'"]+)['"]\]|[a-z_]+)\s*([:~])\s*(['"])((?:\\.|(?!\5).)*)\5\s*""")


def parse_search(text: str) -> tuple[str, list[tuple[bool, str, str | None, str, str]]]:
    """Stripe's search syntax, the subset used here: ``field:'v'``, ``field~'v'``, ``metadata['k']:'v'``,
    negation with ``-``, and clauses joined by all-``AND`` or all-``OR``."""
    clauses: list[tuple[bool, str, str | None, str, str]] = []
    joins: set[str] = set()
    pos = 0
    while pos < len(text):
        match = _CLAUSE.match(text, pos)
        if not match:
            raise bad(f"There was an error parsing your query at position {pos}: {text[pos:pos + 20]!r}", "query")
        negate, field_name, meta_key, op, _quote, value = match.groups()
        value = re.sub(r"\\(.)", r"\1", value)  # Stripe escapes quotes in values with a backslash
        field_name = "metadata" if meta_key else field_name
        if field_name not in ("email", "name", "phone", "metadata", "description"):
            raise bad(f"Field '{field_name}' is an unsupported search field for resource customers.", "query")
        clauses.append((negate == "-", field_name, meta_key, op, value))
        pos = match.end()
        join = re.match(r"(AND|OR)\s+", text[pos:])
        if join:
            joins.add(join.group(1))
            pos += join.end()
    if len(joins) > 1:
        raise bad("Combining AND and OR clauses in one query is not supported.", "query")
    if not clauses:
        raise bad("Missing required param: query.", "query", "parameter_missing")
    return ("OR" if joins == {"OR"} else "AND", clauses)


def search_matches(obj: dict[str, Any], query: tuple[str, list[tuple[bool, str, str | None, str, str]]]) -> bool:
    mode, clauses = query
    results = []
    for negate, field_name, meta_key, op, value in clauses:
        actual = (obj.get("metadata") or {}).get(meta_key or "") if field_name == "metadata" else obj.get(field_name)
        if actual is None:
            hit = False
        elif op == "~":
            hit = value.lower() in str(actual).lower()
        else:
            hit = str(actual) == value if field_name == "metadata" else str(actual).lower() == value.lower()
        results.append(hit != negate)
    return any(results) if mode == "OR" else all(results)


__all__ = ["create_app", "check_metadata"]
