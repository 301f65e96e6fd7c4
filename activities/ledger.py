"""The business steps of invoice feedback: billing invoices and payments into ERP receivables, billing
roll-ups into the CRM. Each activity is one step against one system."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity

from activities.models import Ack
from activities.retrying import business_step
from canonical import Account, CreditNote, Invoice, LegalEntity, Payment
from canonical.ledger import BillingCustomer
from canonical.requests import AccountFigures
from connectors.ports import BillingPort, CrmPort, ErpPort
from settings import Settings


# -- envelopes ---------------------------------------------------------------------------------------
class LedgerConfigRequest(BaseModel):
    flow: str = "account_ledger"


class LedgerConfig(BaseModel):
    """Worker settings the ledger needs, read through an activity so replay stays deterministic."""

    entities: list[LegalEntity]
    continue_after_events: int
    dedupe_window: int
    dso_window_days: int
    activity_retry_max_seconds: float = 300


class BillingCustomerRef(BaseModel):
    customer_id: str


class BillingInvoiceRef(BaseModel):
    invoice_id: str


class ErpContactInput(BaseModel):
    tenant_id: str
    account: Account
    reference: str = Field(description="hubspot-company-<companyId>-<ENTITY>, the quote-to-cash convention")
    idempotency_key: str


class ErpContactResult(BaseModel):
    contact_id: str
    created: bool


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


# -- activities ----------------------------------------------------------------------------------------
class LedgerActivities:
    """Activities of the invoice-feedback flow, holding the connectors they call (built in worker.py)."""

    def __init__(self, *, settings: Settings, crm: CrmPort, billing: BillingPort, erp: ErpPort) -> None:
        self.settings = settings
        self.crm = crm
        self.billing = billing
        self.erp = erp

    @activity.defn(name="load_ledger_config")
    async def load_ledger_config(self, request: LedgerConfigRequest) -> LedgerConfig:
        s = self.settings
        return LedgerConfig(entities=s.legal_entities, continue_after_events=s.ledger_continue_after_events,
                            dedupe_window=s.ledger_dedupe_window, dso_window_days=s.ledger_dso_window_days,
                            activity_retry_max_seconds=s.activity_retry_max_seconds)

    @activity.defn(name="load_billing_customer")
    @business_step
    async def load_billing_customer(self, ref: BillingCustomerRef) -> BillingCustomer:
        """The billing customer with its CRM company and legal entity."""
        return await self.billing.get_customer(ref.customer_id)

    @activity.defn(name="load_billing_invoice")
    @business_step
    async def load_billing_invoice(self, ref: BillingInvoiceRef) -> Invoice:
        """An invoice as billing holds it now (for events that reference an invoice we have not seen)."""
        return await self.billing.get_invoice(ref.invoice_id)

    @activity.defn(name="ensure_ledger_erp_contact")
    @business_step
    async def ensure_erp_contact(self, request: ErpContactInput) -> ErpContactResult:
        """The ERP contact of the account in the entity's tenant, by our reference; created if absent."""
        found = await self.erp.find_customer(request.tenant_id, request.reference)
        if found is not None and found.erp_contact_id:
            return ErpContactResult(contact_id=found.erp_contact_id, created=False)
        account = await self.erp.upsert_customer(request.tenant_id, request.account, contact=None,
                                                 reference=request.reference,
                                                 idempotency_key=request.idempotency_key)
        return ErpContactResult(contact_id=account.erp_contact_id or "", created=True)

    @activity.defn(name="post_erp_invoice")
    @business_step
    async def post_erp_invoice(self, request: PostInvoiceInput) -> ErpDocumentRef:
        """An ACCREC invoice referencing the billing invoice (found first if already posted).

        An event's invoice may carry only its first lines: the whole invoice is then read from billing,
        so the ERP never receives an invoice cut short."""
        invoice = request.invoice
        if not invoice.lines_complete:
            whole = await self.billing.get_invoice(invoice.billing_id)
            invoice = whole.model_copy(update={"legal_entity": invoice.legal_entity or whole.legal_entity})
        erp_id = await self.erp.post_invoice(request.tenant_id, invoice, erp_contact_id=request.erp_contact_id,
                                             idempotency_key=request.idempotency_key)
        return ErpDocumentRef(erp_id=erp_id)

    @activity.defn(name="record_erp_payment")
    @business_step
    async def record_erp_payment(self, request: RecordPaymentInput) -> ErpDocumentRef:
        erp_id = await self.erp.record_payment(request.tenant_id, request.erp_invoice_id, request.payment,
                                               idempotency_key=request.idempotency_key)
        return ErpDocumentRef(erp_id=erp_id)

    @activity.defn(name="post_erp_credit_note")
    @business_step
    async def post_erp_credit_note(self, request: PostCreditNoteInput) -> ErpDocumentRef:
        erp_id = await self.erp.post_credit_note(request.tenant_id, request.credit_note,
                                                 erp_contact_id=request.erp_contact_id,
                                                 idempotency_key=request.idempotency_key)
        return ErpDocumentRef(erp_id=erp_id)

    @activity.defn(name="void_erp_invoice")
    @business_step
    async def void_erp_invoice(self, request: VoidInvoiceInput) -> Ack:
        await self.erp.void_invoice(request.tenant_id, request.erp_invoice_id,
                                    idempotency_key=request.idempotency_key)
        return Ack()

    @activity.defn(name="write_crm_figures")
    @business_step
    async def write_crm_figures(self, request: CrmFiguresInput) -> Ack:
        """Billed, paid, outstanding, overdue, credited, DSO and the last payment date on the company and deals."""
        written = []
        if request.company_id and request.company:
            await self.crm.write_account_figures(request.company_id, request.company)
            written.append(f"company {request.company_id}")
        for deal_id, figures in sorted(request.deals.items()):
            if figures:
                await self.crm.write_deal_figures(deal_id, figures)
                written.append(f"deal {deal_id}")
        return Ack(detail=", ".join(written))

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for the worker."""
        return [self.load_ledger_config, self.load_billing_customer, self.load_billing_invoice,
                self.ensure_erp_contact, self.post_erp_invoice, self.record_erp_payment, self.post_erp_credit_note,
                self.void_erp_invoice, self.write_crm_figures]
