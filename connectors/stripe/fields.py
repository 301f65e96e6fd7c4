"""Stripe's rows of the field mapping (``make docs``), from the wire tables its mapper uses."""

from __future__ import annotations

from connectors.fieldmap import Direction, FieldMapping, one_row_per_field, wire_rows
from connectors.stripe import mapping as stripe_mapping

_IN, _OUT, _BOTH = Direction.IN, Direction.OUT, Direction.BOTH


FIELDS: list[FieldMapping] = one_row_per_field([
    *wire_rows("stripe", "customer", "account", _OUT, stripe_mapping.CUSTOMER_OUT),
    *wire_rows("stripe", "customer", "account", _IN, stripe_mapping.CUSTOMER_IN),
    *wire_rows("stripe", "product", "subscription", _OUT, stripe_mapping.PRODUCT_OUT),
    *wire_rows("stripe", "price", "subscription", _OUT, stripe_mapping.PRICE_OUT),
    *wire_rows("stripe", "invoice", "invoice", _IN, stripe_mapping.INVOICE_IN),
    FieldMapping(vendor="stripe", vendor_object="subscription / invoice item", canonical="Project.code",
                 vendor_field=f"metadata.{stripe_mapping.PROJECT_KEY}", direction=_BOTH, entity="project",
                 transform="our project code: sent in the schedule's metadata, read to find a project's billing"),
    *wire_rows("stripe", "credit note", "credit_note", _OUT, stripe_mapping.CREDIT_NOTE_OUT),
    *wire_rows("stripe", "credit note", "credit_note", _IN, stripe_mapping.CREDIT_NOTE_IN),
    *wire_rows("stripe", "subscription item", "subscription", _IN, stripe_mapping.SUBSCRIPTION_ITEM_IN),
    *wire_rows("stripe", "invoice (one-off)", "invoice", _IN, stripe_mapping.MILESTONE_INVOICE_IN),
    *wire_rows("stripe", "price (rate card)", "subscription", _IN, stripe_mapping.RATE_IN),
])


__all__ = ["FIELDS"]
