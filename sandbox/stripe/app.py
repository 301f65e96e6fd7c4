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

import math
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response

from sandbox.kit import Store, VendorStyle, create_sandbox_app
from sandbox.stripe.catalog import Prices, Products
from sandbox.stripe.controls import Controls
from sandbox.stripe.core import Emulator
from sandbox.stripe.credit_notes import CreditNotes
from sandbox.stripe.customers import Customers
from sandbox.stripe.events import Events
from sandbox.stripe.invoices import InvoiceItems, Invoices
from sandbox.stripe.objects import StripeError, check_metadata, error_response
from sandbox.stripe.subscriptions import Subscriptions
from settings import Settings

RATE_LIMIT_MESSAGE = ("Request rate limit exceeded. You can learn more about rate limits here "
                      "https://stripe.com/docs/rate-limits.")


def _style() -> VendorStyle:
    def error(status: int, message: str) -> Response:
        return error_response(status, message)

    def rate_limited(wait: float) -> Response:
        return error_response(429, RATE_LIMIT_MESSAGE, code="rate_limit",
                              headers={"Retry-After": str(max(1, math.ceil(wait))), "Stripe-Should-Retry": "false"})

    return VendorStyle(vendor="stripe", error=error, rate_limited=rate_limited)


async def stripe_error(_request: Request, exc: StripeError) -> Response:
    """Every refusal a handler raises, in Stripe's error shape."""
    return exc.response()


# Any other /v1 path: Stripe's 404, registered after every resource route. (No docstring: it would show in the
# emulator's OpenAPI document, which stays as it was.)
async def unknown_route(request: Request, rest: str) -> Response:
    return error_response(404, f"Unrecognized request URL ({request.method}: /v1/{rest}). Please see "
                               "https://stripe.com/docs or we can help at https://support.stripe.com/.")


def create_app(config: Any, *, settings: Settings, database_url: str = "sqlite://") -> FastAPI:
    """The Stripe emulator app (``create_app(adapter settings, settings=...)``, served by ``devstack.emulators``)."""
    store = Store(database_url)
    app = create_sandbox_app(style=_style(), store=store, title="Stripe sandbox")
    emu = Emulator(app, store, config)
    app.exception_handler(StripeError)(stripe_error)
    app.middleware("http")(emu.stripe_headers)

    router = APIRouter(dependencies=[Depends(emu.authenticate)])
    for routes in (Customers(emu), Products(emu), Prices(emu), Subscriptions(emu), InvoiceItems(emu), Invoices(emu),
                   CreditNotes(emu), Events(emu)):
        routes.register(router)
    router.api_route("/v1/{rest:path}", methods=["GET", "POST", "DELETE", "PUT", "PATCH"])(unknown_route)
    app.include_router(router)
    Controls(emu).register(app)
    return app


__all__ = ["create_app", "check_metadata"]
