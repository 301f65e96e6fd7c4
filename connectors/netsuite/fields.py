"""NetSuite's rows of the field mapping (``make docs``), from the wire tables its mapper uses."""

from __future__ import annotations

from connectors.fieldmap import Direction, FieldMapping, one_row_per_field, wire_rows
from connectors.netsuite import mapping

_IN, _OUT = Direction.IN, Direction.OUT

FIELDS: list[FieldMapping] = one_row_per_field([
    *wire_rows("netsuite", "customer", "account", _OUT, mapping.CUSTOMER_OUT),
    *wire_rows("netsuite", "customer", "account", _IN, mapping.CUSTOMER_IN),
    *wire_rows("netsuite", "job (project)", "project", _OUT, mapping.PROJECT_OUT),
    *wire_rows("netsuite", "projectTask", "project", _OUT, mapping.TASK_OUT),
    *wire_rows("netsuite", "timeBill", "project", _OUT, mapping.TIME_BILL_OUT),
    *wire_rows("netsuite", "invoice", "invoice", _OUT, mapping.INVOICE_OUT),
    *wire_rows("netsuite", "invoice", "invoice", _IN, mapping.INVOICE_IN),
    *wire_rows("netsuite", "customerPayment", "payment", _OUT, mapping.PAYMENT_OUT),
    *wire_rows("netsuite", "customerPayment", "payment", _IN, mapping.PAYMENT_IN),
    *wire_rows("netsuite", "creditMemo", "credit_note", _OUT, mapping.CREDIT_MEMO_OUT),
    *wire_rows("netsuite", "creditMemo", "credit_note", _IN, mapping.CREDIT_MEMO_IN),
])

__all__ = ["FIELDS"]
