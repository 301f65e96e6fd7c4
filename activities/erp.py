"""The ERP's activities (legal entities, customer financial master data, tax, projects, receivables): one
step each against the ``ErpPort``. The port the worker passes routes each call to the adapter of the
call's tenant (``connectors/routing.py``), so two legal entities may sit in two different ERPs. Field
ownership (ERP-owned contact fields, the ERP-owned project budget) is guarded here, for every adapter.

ERP contacts have one find-or-create path for every flow: ``find_erp_contacts`` looks references up (read
only), ``create_erp_contacts`` creates exactly the drafts the look-up found missing. The workflow holds the
plan in its history between the two, so a retried create replays the same requests under the same keys
(the ERP answers with the first create) and "created" stays true: a contact is the run's to compensate
exactly when the look-up did not find it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.cutover import ErpBooks, ErpMoves
from activities.ledger import (
    ErpDocumentRef,
    PostCreditNoteInput,
    PostInvoiceInput,
    RecordPaymentInput,
    ReverseCreditNoteInput,
    VoidInvoiceInput,
)
from activities.models import (
    AcceptedMilestones,
    Ack,
    CreateErpContactsInput,
    ErpContactsPlan,
    ErpContactsResult,
    ErpProjectInput,
    ErpRecordRef,
    FindErpContactsInput,
    GuardedProjectInput,
    LinkErpContactInput,
    MatchErpContactInput,
)
from activities.retrying import business_step
from canonical import Invoice, Project
from canonical.backfill import ErpCustomerDraft
from canonical.matching import CustomerMatch, match_customer
from canonical.ownership import OwnershipViolation, SystemRole, owner_of, writable_over
from canonical.refs import contact_key, ownership_marker
from connectors.pacing import Pacer
from connectors.ports import ErpPort

BENIGN = ApplicationErrorCategory.BENIGN
#: whose data a refresh writes into an ERP contact, and the account fields an ERP contact keeps
CONTACT_WRITER = SystemRole.CRM
CONTACT_FIELDS = ("domain", "country", "address", "tax_number", "payment_terms_days")


class InvoiceSource(Protocol):
    """Where a posted invoice cut short by its event is read whole (billing's ``get_invoice``)."""

    async def get_invoice(self, invoice_id: str) -> Invoice:
        ...


class ErpActivities:
    """The ERP port's steps. ``billing`` is only billing's read of one invoice (:class:`InvoiceSource`), for the
    one ERP write that must not post an invoice cut short (``post_erp_invoice``)."""

    def __init__(self, *, erp: ErpPort, billing: InvoiceSource | None = None, moves: ErpMoves | None = None
                 ) -> None:
        self.erp = erp
        self.billing = billing
        self.moves = moves
        self._pacers: dict[tuple[str, float], Pacer] = {}

    async def _at(self, tenant_id: str) -> ErpBooks:
        """The tenant and adapter a call addressed to ``tenant_id`` goes to: the new ones when an ERP cut-over
        moved that tenant's books (``activities/cutover.py``), else as addressed."""
        return await self.moves.books(tenant_id, self.erp) if self.moves is not None else ErpBooks(tenant_id, self.erp)

    async def _id(self, books: ErpBooks, kind: str, erp_id: str) -> str:
        """``erp_id`` in ``books.tenant``: the copy's ID when a cut-over copied that record there."""
        return await self.moves.new_id(books, kind, erp_id) if self.moves is not None else erp_id

    async def _pace(self, tenant_id: str, rate: float | None) -> None:
        if rate:
            await self._pacers.setdefault((tenant_id, rate), Pacer(rate)).take()

    # -- contacts: one find-or-create ------------------------------------------------------------------
    @activity.defn(name="find_erp_contacts")
    @business_step
    async def find_erp_contacts(self, request: FindErpContactsInput) -> ErpContactsPlan:
        """Which drafts have no ERP contact under their reference yet (read only, ``batch_size`` a request)."""
        plan = ErpContactsPlan()
        drafts = request.drafts
        at = await self._at(request.tenant_id)
        tenant, erp = at.tenant, at.erp
        for start in range(0, len(drafts), request.batch_size):
            batch = drafts[start:start + request.batch_size]
            await self._pace(request.tenant_id, request.requests_per_second)
            found = await erp.find_customers(tenant, [d.reference for d in batch])
            plan.requests += 1
            plan.missing += [d for d in batch if d.reference not in found]
            plan.found.update({d.reference: found[d.reference] for d in batch if d.reference in found})
        plan.existing = len(plan.found)
        return plan

    @activity.defn(name="create_erp_contacts")
    @business_step
    async def create_erp_contacts(self, request: CreateErpContactsInput) -> ErpContactsResult:
        """Create exactly ``drafts``, ``batch_size`` a request; then bring the ``refresh`` contacts up to date
        with the CRM's fields (an archived contact is reactivated). The drafts and keys are the same on every
        attempt, so a retry after a lost answer gets the ERP's replay of the first create, not a second
        contact, and the count stays true.

        The ownership guard is here, for every ERP: a refresh reads the contact first, and an ERP-owned field
        (tax number, payment terms) it already holds is not sent; an empty one is filled."""
        result = ErpContactsResult()
        at = await self._at(request.tenant_id)
        tenant, erp = at.tenant, at.erp
        drafts = [d.model_copy(update={"marker": self._mark(request.idempotency_key, d)}) for d in request.drafts]
        for start in range(0, len(drafts), request.batch_size):
            batch = drafts[start:start + request.batch_size]
            await self._pace(request.tenant_id, request.requests_per_second)
            made = await erp.create_customers(tenant, batch,
                                                   idempotency_key=f"{request.idempotency_key}:{start}")
            result.requests += 1
            result.created += len(batch)
            result.contact_ids.update(zip([d.reference for d in batch], made.contact_ids, strict=True))
            result.ours += [d.reference for d in batch]
        for draft in request.refresh:
            await self._pace(request.tenant_id, request.requests_per_second)
            held = await erp.find_customer(tenant, draft.reference)
            await self._pace(request.tenant_id, request.requests_per_second)
            account = await erp.upsert_customer(
                tenant, writable_over("account", draft.account, held, writer=CONTACT_WRITER,
                                                 fields=CONTACT_FIELDS),
                contact=draft.contact, reference=draft.reference,
                idempotency_key=f"{request.idempotency_key}:refresh:{draft.reference}")
            result.requests += 2
            result.existing += 1
            result.contact_ids[draft.reference] = account.erp_contact_id or ""
            if account.created_by == self._mark(request.idempotency_key, draft):
                result.ours.append(draft.reference)
        return result

    @staticmethod
    def _mark(idempotency_key: str, draft: ErpCustomerDraft) -> str:
        """The ownership mark a create under ``idempotency_key`` writes on ``draft``'s contact, whatever batch it
        went in: a contact carrying it was made under this key (even when the answer was lost)."""
        return ownership_marker(contact_key(idempotency_key, draft.reference))

    @activity.defn(name="match_erp_contact")
    @business_step
    async def match_erp_contact(self, request: MatchErpContactInput) -> CustomerMatch:
        """Contacts finance keyed by hand that may be the draft's account, and what the matching rules make of
        them (``canonical.matching``): link one, ask a person, or create. Read only."""
        draft = request.draft
        email = draft.contact.email if draft.contact else None
        candidates = await self.erp.customer_candidates(request.tenant_id, draft.account, email=email)
        return match_customer(draft.account, candidates, email=email, reference=draft.reference)

    @activity.defn(name="link_erp_contact")
    @business_step
    async def link_erp_contact(self, request: LinkErpContactInput) -> ErpContactsResult:
        """Write our reference on the chosen contact; it is finance's record, never the run's to compensate."""
        account = await self.erp.link_customer(request.tenant_id, request.contact_id, reference=request.reference,
                                               idempotency_key=request.idempotency_key)
        return ErpContactsResult(existing=1, requests=1,
                                 contact_ids={request.reference: account.erp_contact_id or request.contact_id})

    @activity.defn(name="archive_erp_customer")
    @business_step
    async def archive_erp_customer(self, ref: ErpRecordRef) -> Ack:
        at = await self._at(ref.tenant_id)
        tenant, erp = at.tenant, at.erp
        await erp.archive_customer(tenant, await self._id(at, "contact", ref.record_id))
        return Ack()

    # -- projects ----------------------------------------------------------------------------------------
    @activity.defn(name="create_erp_project")
    @business_step
    async def create_erp_project(self, request: ErpProjectInput) -> Project:
        at = await self._at(request.tenant_id)
        tenant, erp = at.tenant, at.erp
        return await erp.create_project(tenant, request.project, idempotency_key=request.idempotency_key)

    @activity.defn(name="close_erp_project")
    @business_step
    async def close_erp_project(self, ref: ErpRecordRef) -> Ack:
        at = await self._at(ref.tenant_id)
        tenant, erp = at.tenant, at.erp
        await erp.close_project(tenant, await self._id(at, "project", ref.record_id))
        return Ack()

    @activity.defn(name="accepted_erp_milestones")
    @business_step
    async def accepted_erp_milestones(self, ref: ErpRecordRef) -> AcceptedMilestones:
        """The milestones of the project a person accepted in the project system (read only)."""
        at = await self._at(ref.tenant_id)
        tenant, erp = at.tenant, at.erp
        return AcceptedMilestones(codes=await erp.accepted_milestones(tenant, ref.record_id))

    @activity.defn(name="update_erp_project")
    @business_step
    async def update_erp_project(self, request: GuardedProjectInput) -> Project:
        """Budget, deadline and tasks of the project, under the ownership rule of its budget.

        The budget is ERP-owned (``FIELD_OWNERSHIP``). The CLM may move it only while the ERP still holds
        the value we last wrote: a different value means someone changed it in the ERP, and the write is
        refused as an ``OwnershipViolation`` for an operator to decide (keep the ERP's value or overwrite).
        """
        project = request.project
        assert project.erp_id
        at = await self._at(request.tenant_id)
        tenant, erp = at.tenant, at.erp
        if tenant != request.tenant_id:  # the entity's books moved: the copy of the project, in the new ERP
            project = project.model_copy(update={
                "erp_id": await self._id(at, "project", project.erp_id), "erp_tenant_id": tenant,
                "erp_contact_id": await self._id(at, "contact", project.erp_contact_id)})
        assert project.erp_id
        current = await erp.get_project(tenant, project.erp_id)
        if request.keep_erp_budget:
            project = project.model_copy(update={"budget": current.budget})
        elif not request.force and request.expected_budget is not None:
            expected = Decimal(request.expected_budget)
            if current.budget.amount not in (expected, project.budget.amount):
                violation = OwnershipViolation("project", "budget", owner_of("project", "budget"), SystemRole.CLM)
                raise ApplicationError(
                    f"{violation}: the ERP holds {current.budget} for {project.code}, we last wrote "
                    f"{expected} {current.budget.currency}; the amendment wants {project.budget}",
                    type="OwnershipViolation", non_retryable=True, category=BENIGN) from violation
        return await erp.update_project(tenant, project, idempotency_key=request.idempotency_key)

    # -- receivables (invoice feedback) ---------------------------------------------------------------------
    @activity.defn(name="post_erp_invoice")
    @business_step
    async def post_erp_invoice(self, request: PostInvoiceInput) -> ErpDocumentRef:
        """An ACCREC invoice referencing the billing invoice (found first if already posted).

        An event's invoice may carry only its first lines: the whole invoice is then read from billing,
        so the ERP never receives an invoice cut short."""
        invoice = request.invoice
        if not invoice.lines_complete:
            if self.billing is None:
                raise ApplicationError("the ERP activities have no billing invoice source", type="Misconfigured",
                                       non_retryable=True)
            whole = await self.billing.get_invoice(invoice.billing_id)
            invoice = whole.model_copy(update={"legal_entity": invoice.legal_entity or whole.legal_entity})
        at = await self._at(request.tenant_id)
        tenant, erp = at.tenant, at.erp
        contact = await self._id(at, "contact", request.erp_contact_id)
        erp_id = await erp.post_invoice(tenant, invoice, erp_contact_id=contact,
                                        idempotency_key=request.idempotency_key)
        return ErpDocumentRef(erp_id=erp_id)

    @activity.defn(name="record_erp_payment")
    @business_step
    async def record_erp_payment(self, request: RecordPaymentInput) -> ErpDocumentRef:
        at = await self._at(request.tenant_id)
        tenant, erp = at.tenant, at.erp
        erp_id = await erp.record_payment(tenant, await self._id(at, "invoice", request.erp_invoice_id),
                                          request.payment, idempotency_key=request.idempotency_key)
        return ErpDocumentRef(erp_id=erp_id)

    @activity.defn(name="post_erp_credit_note")
    @business_step
    async def post_erp_credit_note(self, request: PostCreditNoteInput) -> ErpDocumentRef:
        at = await self._at(request.tenant_id)
        tenant, erp = at.tenant, at.erp
        erp_id = await erp.post_credit_note(tenant, request.credit_note,
                                            erp_contact_id=await self._id(at, "contact", request.erp_contact_id),
                                            idempotency_key=request.idempotency_key)
        return ErpDocumentRef(erp_id=erp_id)

    @activity.defn(name="void_erp_invoice")
    @business_step
    async def void_erp_invoice(self, request: VoidInvoiceInput) -> Ack:
        at = await self._at(request.tenant_id)
        tenant, erp = at.tenant, at.erp
        await erp.void_invoice(tenant, await self._id(at, "invoice", request.erp_invoice_id),
                               idempotency_key=request.idempotency_key)
        return Ack()

    @activity.defn(name="reverse_erp_credit_note")
    @business_step
    async def reverse_erp_credit_note(self, request: ReverseCreditNoteInput) -> Ack:
        """Take back a closing credit the ledger posted (a write-off that cash or a credit made wrong)."""
        at = await self._at(request.tenant_id)
        tenant, erp = at.tenant, at.erp
        await erp.reverse_credit_note(tenant, request.credit_note, idempotency_key=request.idempotency_key)
        return Ack()

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for the worker."""
        return [self.find_erp_contacts, self.create_erp_contacts, self.match_erp_contact, self.link_erp_contact,
                self.archive_erp_customer,
                self.create_erp_project, self.close_erp_project, self.update_erp_project,
                self.accepted_erp_milestones, self.post_erp_invoice,
                self.record_erp_payment, self.post_erp_credit_note, self.void_erp_invoice,
                self.reverse_erp_credit_note]


__all__ = ["ErpActivities", "InvoiceSource"]
