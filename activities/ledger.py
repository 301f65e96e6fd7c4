"""The envelopes of invoice feedback's steps: billing invoices and payments into ERP receivables, billing
roll-ups into the CRM. The steps themselves are the role classes' (``activities/billing.py``,
``activities/erp.py``, ``activities/crm.py``); the ledger's settings come from ``load_flow_config``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from canonical import CreditNote, Invoice, Payment
from canonical.requests import AccountFigures


# -- envelopes ---------------------------------------------------------------------------------------
class BillingCustomerRef(BaseModel):
    customer_id: str


class BillingInvoiceRef(BaseModel):
    invoice_id: str


class PostInvoiceInput(BaseModel):
    tenant_id: str
    invoice: Invoice
    erp_contact_id: str
    idempotency_key: str


class RecordPaymentInput(BaseModel):
    tenant_id: str
    erp_invoice_id: str
    payment: Payment
    idempotency_key: str


class PostCreditNoteInput(BaseModel):
    tenant_id: str
    credit_note: CreditNote
    erp_contact_id: str
    idempotency_key: str


class ReverseCreditNoteInput(BaseModel):
    tenant_id: str
    credit_note: CreditNote
    idempotency_key: str


class VoidInvoiceInput(BaseModel):
    tenant_id: str
    erp_invoice_id: str
    idempotency_key: str


class ErpDocumentRef(BaseModel):
    erp_id: str


class CrmFiguresInput(BaseModel):
    """Figures for the company and, per deal, for that deal's invoices."""

    company_id: str | None = None
    company: list[AccountFigures] = Field(default_factory=list)
    deals: dict[str, list[AccountFigures]] = Field(default_factory=dict)
