"""Every cross-system convention in one place: the references we leave in other systems, our project
codes, workflow IDs (business keys) and idempotency keys, each with its inverse beside it.

A reference once written to a vendor is data: changing a shape here strands the records that carry the
old one, so a change needs a migration, not an edit.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from canonical.refs import SYSTEM_NAME

_PROJECT = "P-"
QUOTE_TO_CASH = "q2c"
AMENDMENTS = "contract"
LEDGER = "ledger"
BACKFILL = "backfill"
INVOICING = "invoicing"
FIGURES = "figures"
TIME_BILLING = "time"
#: workflow ID kinds: prefix -> what the ID after ``<prefix>-<adapter>-`` names
_KINDS = {QUOTE_TO_CASH: "deal", AMENDMENTS: "contract", LEDGER: "customer", BACKFILL: "entity",
          INVOICING: "project", FIGURES: "company", TIME_BILLING: "project"}
_ADAPTER = SYSTEM_NAME
#: the business ID inside a workflow ID: opaque, but one token of printable ASCII (no space, newline or control)
BUSINESS_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")


class EntityScoped(NamedTuple):
    """A CRM ID and the legal entity a reference or code belongs to."""

    crm_id: str
    entity_code: str


def _split_entity(rest: str) -> EntityScoped | None:
    crm_id, dash, entity = rest.rpartition("-")
    return EntityScoped(crm_id, entity) if dash and crm_id and entity else None


# -- references in other systems --------------------------------------------------------------------
def erp_contact_reference(crm: str, company_id: str, entity_code: str) -> str:
    """The external reference of a CRM company's customer record in one entity (ERP contact number, billing
    metadata), ``<crm>-company-<id>-<entity>``: quote-to-cash, the ledger and the backfill find the same record
    by it. ``crm`` is the CRM adapter's name."""
    return f"{_adapter(crm)}-company-{company_id}-{entity_code}"


def parse_erp_contact_reference(reference: str) -> EntityScoped | None:
    """The company ID and entity of :func:`erp_contact_reference`, or ``None`` for anything else."""
    adapter, dash, rest = reference.partition("-company-")
    return _split_entity(rest) if dash and _ADAPTER.fullmatch(adapter) else None


def billing_customer_reference(billing: str, customer_id: str, entity_code: str) -> str:
    """The ERP reference of a billing customer that no CRM company is known for (the ledger's fallback),
    ``<billing>-customer-<id>-<entity>``."""
    return f"{_adapter(billing)}-customer-{customer_id}-{entity_code}"


def project_code(deal_id: str, entity_code: str) -> str:
    """Our code of a deal's delivery project in one entity (also its external reference in the ERP)."""
    return f"{_PROJECT}{deal_id}-{entity_code}"


def project_code_prefix(deal_id: str) -> str:
    """What every project code of a deal starts with, whatever the entity."""
    return f"{_PROJECT}{deal_id}-"


def parse_project_code(code: str) -> EntityScoped | None:
    """The deal ID and entity of :func:`project_code`, or ``None`` for a project we did not create."""
    return _split_entity(code.removeprefix(_PROJECT)) if code.startswith(_PROJECT) else None


_WRITE_OFF = "uncollectible"
_VOID_REMAINDER = "void-remainder"
_CLOSING = re.compile(rf"(?P<invoice>.+)-(?:{_WRITE_OFF}|{_VOID_REMAINDER})(?:-(?P<n>[2-9]|[1-9][0-9]+))?")


def closing_credit_note_id(invoice_id: str, *, written_off: bool, n: int = 1) -> str:
    """The ID (and ERP reference) of a credit note the ledger itself writes to close an invoice unpaid: the
    write-off of an invoice billing marked uncollectible, or the unpaid remainder of one voided after part
    payment; the ``n``-th when an earlier one was reversed. Billing issues no credit note for either, so
    reconciliation must know them as ours (:func:`closed_invoice_of`)."""
    suffix = _WRITE_OFF if written_off else _VOID_REMAINDER
    return f"{invoice_id}-{suffix}" + ("" if n == 1 else f"-{n}")


def write_off_credit_note_id(invoice_id: str) -> str:
    """The first write-off credit note of an invoice (:func:`closing_credit_note_id`)."""
    return closing_credit_note_id(invoice_id, written_off=True)


def is_write_off(credit_note_id: str) -> bool:
    """Whether ``credit_note_id`` is one of the ledger's write-offs (:func:`closing_credit_note_id`): its net is
    booked to bad debt, not back to revenue."""
    found = _CLOSING.fullmatch(credit_note_id)
    return found is not None and credit_note_id.removeprefix(found.group("invoice") + "-").startswith(_WRITE_OFF)


def closed_invoice_of(credit_note_id: str) -> str | None:
    """The billing invoice of one of the ledger's own closing credit notes, or ``None`` for any other."""
    found = _CLOSING.fullmatch(credit_note_id)
    return found.group("invoice") if found else None


#: the name reconciliation knows it by
written_off_invoice = closed_invoice_of


# -- workflow IDs (business keys) ------------------------------------------------------------------
# ``<kind>-<adapter>-<id>``: the adapter is the name of the system the ID belongs to (the configured CRM's for a
# deal), the ID an opaque string (anything the vendor uses, dashes included).
def _adapter(name: str) -> str:
    if not _ADAPTER.fullmatch(name):
        raise ValueError(f"{name!r} is not an adapter name (lower-case letters and digits)")
    return name


def _business_id(kind: str, adapter: str, id_: str) -> str:
    if not BUSINESS_ID.fullmatch(id_):
        raise ValueError(f"a {_KINDS[kind]} ID is one token of letters, digits and ._:@- (at most 128), "
                         "starting with a letter or digit")
    return f"{kind}-{_adapter(adapter)}-{id_}"


def quote_to_cash_workflow_id(crm: str, deal_id: str) -> str:
    """One quote-to-cash run per CRM deal: ``q2c-<crm>-<dealId>``."""
    return _business_id(QUOTE_TO_CASH, crm, deal_id)


def amendments_workflow_id(clm: str, record_id: str) -> str:
    """One amendments workflow per executed contract record: ``contract-<clm>-<recordId>``."""
    return _business_id(AMENDMENTS, clm, record_id)


def ledger_workflow_id(billing: str, customer_id: str) -> str:
    """One invoice-feedback ledger per billing customer: ``ledger-<billing>-<customerId>``."""
    return _business_id(LEDGER, billing, customer_id)


def backfill_workflow_id(erp: str, entity_code: str) -> str:
    """One company backfill per legal entity into its ERP: ``backfill-<erp>-<entity>``."""
    return _business_id(BACKFILL, erp, entity_code)


def invoicing_workflow_id(billing: str, project: str) -> str:
    """One finalization flow for the one-off invoices of a project (deal x entity):
    ``invoicing-<billing>-<projectCode>``."""
    return _business_id(INVOICING, billing, project)


def company_figures_workflow_id(crm: str, company_id: str) -> str:
    """The one writer of a CRM company's billing figures, summed over every ledger that bills it:
    ``figures-<crm>-<companyId>``."""
    return _business_id(FIGURES, crm, company_id)
def time_billing_workflow_id(billing: str, project: str) -> str:
    """One flow per time-and-materials project that bills its logged time each period:
    ``time-<billing>-<projectCode>``."""
    return _business_id(TIME_BILLING, billing, project)


def time_task_name(role: str) -> str:
    """The project task a rate-card role's time is logged on: ``<role> time``."""
    return f"{role} time"


def milestone_task_name(code: str, name: str) -> str:
    """The project task a milestone is delivered (and accepted) on: ``<milestone code> <name>``."""
    return f"{code} {name}"


def milestone_of_task(name: str) -> str:
    """The milestone code of :func:`milestone_task_name` (its first word)."""
    return name.split(" ", 1)[0]


def role_of_time_task(name: str) -> str | None:
    """The rate-card role of :func:`time_task_name`, or ``None`` for any other task."""
    role, space, suffix = name.rpartition(" ")
    return role if space and role and suffix == "time" else None


def workflow_id_shape(kind: str, adapter: str, placeholder: str) -> str:
    """How a workflow ID of ``kind`` (``QUOTE_TO_CASH`` ...) looks, for documentation: ``q2c-hubspot-<dealId>``."""
    return f"{kind}-{_adapter(adapter)}-{placeholder}"


class BusinessId(NamedTuple):
    """What one of our workflow IDs names: ``kind`` (deal, contract, customer, entity), the adapter, the ID."""

    kind: str
    adapter: str
    id: str


def parse_workflow_id(workflow_id: str) -> BusinessId | None:
    """The inverse of the ``*_workflow_id`` functions; ``None`` for an ID that is not one of ours."""
    prefix, dash, rest = workflow_id.partition("-")
    adapter, dash2, id_ = rest.partition("-")
    if not (dash and dash2 and prefix in _KINDS and _ADAPTER.fullmatch(adapter) and id_):
        return None
    if not BUSINESS_ID.fullmatch(id_):
        return None
    return BusinessId(_KINDS[prefix], adapter, id_)


def business_id_of(workflow_id: str) -> tuple[str, str] | None:
    """``(kind, id)`` behind one of our workflow IDs (``("deal", "123")`` for ``q2c-<crm>-123``)."""
    parsed = parse_workflow_id(workflow_id)
    return (parsed.kind, parsed.id) if parsed else None


def is_workflow_of(workflow_id: str, kind: str) -> bool:
    """Whether ``workflow_id`` is one of ours of ``kind`` (``"deal"``, ``"contract"`` ...), whatever adapter."""
    parsed = parse_workflow_id(workflow_id)
    return parsed is not None and parsed.kind == kind


def approval_subject_of(workflow_id: str) -> str | None:
    """``"deal"`` or ``"amendment"`` when ``workflow_id`` is a quote-to-cash or amendments workflow ID whose
    business ID follows :data:`BUSINESS_ID` (what the approvals API may sign for), else ``None``."""
    found = business_id_of(workflow_id)
    if found is None or found[0] not in ("deal", "contract") or not BUSINESS_ID.fullmatch(found[1]):
        return None
    return "deal" if found[0] == "deal" else "amendment"


CUTOVER = "cutover"


def cutover_workflow_id(entity_code: str, to_erp: str) -> str:
    """One ERP cut-over per legal entity and target ERP: ``cutover-<entity>-<erp>`` (a rerun reuses it)."""
    if not BUSINESS_ID.fullmatch(entity_code) or "-" in entity_code:
        raise ValueError(f"{entity_code!r} is not a legal entity code")
    return f"{CUTOVER}-{entity_code}-{_adapter(to_erp)}"


def parse_cutover_workflow_id(workflow_id: str) -> tuple[str, str] | None:
    """``(entity, erp)`` of :func:`cutover_workflow_id`, or ``None`` for anything else."""
    prefix, _, rest = workflow_id.partition("-")
    entity, _, erp = rest.rpartition("-")
    if prefix != CUTOVER or not entity or "-" in entity or not _ADAPTER.fullmatch(erp):
        return None
    return entity, erp


def cutover_record_key(cutover_id: str, kind: str, old_id: str) -> str:
    """The idempotency key of copying one ERP record in a cut-over, the same on every rerun:
    ``<cutoverId>:<kind>:<oldId>``."""
    return f"{cutover_id}:{kind}:{old_id}"


# -- idempotency keys --------------------------------------------------------------------------------
def step_idempotency_key(workflow_id: str, scope: str, step: str) -> str:
    """The key of one external write: ``<workflowId>:<scope>:<step>``, stable across retries, replays and
    continue-as-new. ``scope`` says what the key is unique within: the run chain (quote-to-cash: the first
    run's ID, so a new chain for the same deal gets new keys), an amendment (``a<sequence>``), an invoice."""
    return f"{workflow_id}:{scope}:{step}"


__all__ = [
    "AMENDMENTS", "BACKFILL", "BUSINESS_ID", "CUTOVER", "FIGURES", "INVOICING", "LEDGER", "QUOTE_TO_CASH",
    "BusinessId", "EntityScoped", "amendments_workflow_id", "approval_subject_of", "backfill_workflow_id",
    "billing_customer_reference", "business_id_of", "company_figures_workflow_id", "cutover_record_key",
    "cutover_workflow_id", "erp_contact_reference", "is_workflow_of", "invoicing_workflow_id", "ledger_workflow_id",
    "parse_cutover_workflow_id",
    "parse_erp_contact_reference",
    "parse_project_code", "parse_workflow_id", "project_code", "project_code_prefix", "quote_to_cash_workflow_id",
    "step_idempotency_key", "TIME_BILLING", "milestone_of_task", "milestone_task_name",
    "role_of_time_task", "time_billing_workflow_id", "time_task_name",
    "workflow_id_shape", "write_off_credit_note_id", "written_off_invoice",
    "closing_credit_note_id", "closed_invoice_of", "is_write_off",
]
