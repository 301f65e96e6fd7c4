"""Xero's rows of the field mapping (``make docs``), from the wire tables its mapper uses."""

from __future__ import annotations

from connectors.fieldmap import Direction, FieldMapping, one_row_per_field, wire_rows
from connectors.xero import mapping as xero_mapping

_IN, _OUT, _BOTH = Direction.IN, Direction.OUT, Direction.BOTH


FIELDS: list[FieldMapping] = one_row_per_field([
    *wire_rows("xero", "contact", "account", _OUT, xero_mapping.CONTACT_OUT),
    *wire_rows("xero", "contact", "account", _IN, xero_mapping.CONTACT_IN),
    *wire_rows("xero", "project", "project", _OUT, xero_mapping.PROJECT_OUT),
    *wire_rows("xero", "project", "project", _IN, xero_mapping.PROJECT_IN),
    *wire_rows("xero", "project task", "project", _OUT, xero_mapping.TASK_OUT),
    *wire_rows("xero", "project task", "project", _IN, xero_mapping.TASK_IN),
    *wire_rows("xero", "time entry", "project", _OUT, xero_mapping.TIME_ENTRY_OUT),
    *wire_rows("xero", "ACCREC invoice", "invoice", _OUT, xero_mapping.INVOICE_OUT),
    *wire_rows("xero", "ACCREC invoice", "invoice", _IN, xero_mapping.INVOICE_IN),
    *wire_rows("xero", "ACCREC invoice line", "invoice", _OUT, xero_mapping.LINE_OUT),
    FieldMapping(vendor="xero", vendor_object="ACCREC invoice line", canonical="InvoiceLine.product_code",
                 vendor_field="ItemCode", direction=_OUT, entity="invoice",
                 transform="the catalogue's ERP item code of the line's SKU (`add_item_codes`); none if unlisted"),
    *wire_rows("xero", "payment", "payment", _OUT, xero_mapping.PAYMENT_OUT),
    *wire_rows("xero", "payment", "payment", _IN, xero_mapping.PAYMENT_IN),
    *wire_rows("xero", "ACCRECCREDIT credit note", "credit_note", _OUT, xero_mapping.CREDIT_NOTE_OUT),
    *wire_rows("xero", "ACCRECCREDIT credit note", "credit_note", _IN, xero_mapping.CREDIT_NOTE_IN),
])


__all__ = ["FIELDS"]
