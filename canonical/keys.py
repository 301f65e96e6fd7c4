"""Every cross-system convention in one place: the references we leave in other systems, our project
codes, workflow IDs (business keys) and idempotency keys, each with its inverse beside it.

A reference once written to a vendor is data: changing a shape here strands the records that carry the
old one, so a change needs a migration, not an edit.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_CONTACT = "hubspot-company-"
_PROJECT = "P-"
QUOTE_TO_CASH_PREFIX = "q2c-hubspot-"
AMENDMENTS_PREFIX = "contract-ironclad-"
LEDGER_PREFIX = "ledger-stripe-"
BACKFILL_PREFIX = "backfill-xero-contacts-"


class EntityScoped(NamedTuple):
    """A CRM ID and the legal entity a reference or code belongs to."""

    crm_id: str
    entity_code: str


def _split_entity(rest: str) -> EntityScoped | None:
    crm_id, dash, entity = rest.rpartition("-")
    return EntityScoped(crm_id, entity) if dash and crm_id and entity else None


# -- references in other systems --------------------------------------------------------------------
def erp_contact_reference(company_id: str, entity_code: str) -> str:
    """The external reference of a CRM company's customer record in one entity (ERP ContactNumber,
    billing metadata): quote-to-cash, the ledger and the backfill find the same record by it."""
    return f"{_CONTACT}{company_id}-{entity_code}"


def parse_erp_contact_reference(reference: str) -> EntityScoped | None:
    """The company ID and entity of :func:`erp_contact_reference`, or ``None`` for anything else."""
    return _split_entity(reference.removeprefix(_CONTACT)) if reference.startswith(_CONTACT) else None


def billing_customer_reference(customer_id: str, entity_code: str) -> str:
    """The ERP reference of a billing customer that no CRM company is known for (the ledger's fallback)."""
    return f"stripe-customer-{customer_id}-{entity_code}"


def project_code(deal_id: str, entity_code: str) -> str:
    """Our code of a deal's delivery project in one entity (also its external reference in the ERP)."""
    return f"{_PROJECT}{deal_id}-{entity_code}"


def project_code_prefix(deal_id: str) -> str:
    """What every project code of a deal starts with, whatever the entity."""
    return f"{_PROJECT}{deal_id}-"


def parse_project_code(code: str) -> EntityScoped | None:
    """The deal ID and entity of :func:`project_code`, or ``None`` for a project we did not create."""
    return _split_entity(code.removeprefix(_PROJECT)) if code.startswith(_PROJECT) else None


# -- workflow IDs (business keys) ------------------------------------------------------------------
def quote_to_cash_workflow_id(deal_id: str) -> str:
    """One quote-to-cash run per CRM deal."""
    return f"{QUOTE_TO_CASH_PREFIX}{deal_id}"


def amendments_workflow_id(record_id: str) -> str:
    """One amendments workflow per executed contract record."""
    return f"{AMENDMENTS_PREFIX}{record_id}"


def ledger_workflow_id(customer_id: str) -> str:
    """One invoice-feedback ledger per billing customer."""
    return f"{LEDGER_PREFIX}{customer_id}"


def backfill_workflow_id(entity_code: str) -> str:
    """One company backfill per legal entity."""
    return f"{BACKFILL_PREFIX}{entity_code}"


def business_id_of(workflow_id: str) -> tuple[str, str] | None:
    """``(kind, id)`` behind one of our workflow IDs (``("deal", "123")`` for ``q2c-hubspot-123``)."""
    for prefix, kind in ((QUOTE_TO_CASH_PREFIX, "deal"), (AMENDMENTS_PREFIX, "contract"),
                         (LEDGER_PREFIX, "customer"), (BACKFILL_PREFIX, "entity")):
        if workflow_id.startswith(prefix) and len(workflow_id) > len(prefix):
            return kind, workflow_id.removeprefix(prefix)
    return None


#: the business ID inside a workflow ID: opaque, but one token of printable ASCII (no space, newline or control)
BUSINESS_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


def approval_subject_of(workflow_id: str) -> str | None:
    """``"deal"`` or ``"amendment"`` when ``workflow_id`` is a quote-to-cash or amendments workflow ID whose
    business ID follows :data:`BUSINESS_ID` (what the approvals API may sign for), else ``None``."""
    found = business_id_of(workflow_id)
    if found is None or found[0] not in ("deal", "contract") or not BUSINESS_ID.fullmatch(found[1]):
        return None
    return "deal" if found[0] == "deal" else "amendment"


# -- idempotency keys --------------------------------------------------------------------------------
def step_idempotency_key(workflow_id: str, scope: str, step: str) -> str:
    """The key of one external write: ``<workflowId>:<scope>:<step>``, stable across retries, replays and
    continue-as-new. ``scope`` says what the key is unique within: the run chain (quote-to-cash: the first
    run's ID, so a new chain for the same deal gets new keys), an amendment (``a<sequence>``), an invoice."""
    return f"{workflow_id}:{scope}:{step}"


__all__ = [
    "BUSINESS_ID", "EntityScoped", "amendments_workflow_id", "approval_subject_of", "backfill_workflow_id",
    "billing_customer_reference",
    "business_id_of", "erp_contact_reference", "ledger_workflow_id", "parse_erp_contact_reference",
    "parse_project_code", "project_code", "project_code_prefix", "quote_to_cash_workflow_id",
    "step_idempotency_key",
]
