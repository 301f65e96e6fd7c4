"""The one ERP-contact find-or-create of every flow (quote-to-cash, the ledger; the backfill does the same two
activities in paced batches).

The look-up is a read (a local activity); the create runs only for what is missing, under the caller's
idempotency key, so a retry after a lost answer gets the ERP's replay, never a second contact. Quote-to-cash
also brings an existing contact up to date with the CRM's fields (``refresh``); the ownership guard of the ERP
activities keeps every ERP-owned field. Deterministic: activities only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.erp import ErpActivities
    from activities.models import CreateErpContactsInput, FindErpContactsInput
    from canonical.backfill import ErpCustomerDraft
    from canonical.systems import System

#: ``WorkflowStatus.step``: ``(activity, argument, summary, local=...) -> result``
Step = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class ErpContact:
    """The contact a flow uses, and whether this call's key made it (then it is the flow's to compensate)."""

    contact_id: str
    created: bool


async def find_or_create_erp_contact(step: Step, *, erp: System, tenant_id: str, entity_code: str,
                                     draft: ErpCustomerDraft, idempotency_key: str,
                                     refresh: bool = False) -> ErpContact:
    """The ERP contact of ``draft.reference`` in ``tenant_id``: found, or created once under
    ``idempotency_key``; with ``refresh``, a found one is brought up to date with the draft."""
    reference = draft.reference
    found = await step(ErpActivities.find_erp_contacts, FindErpContactsInput(tenant_id=tenant_id, drafts=[draft]),
                       f"Find {erp.label} contact {reference} in {entity_code}", local=True)
    if reference in found.found and not refresh:
        return ErpContact(contact_id=found.found[reference], created=False)
    written = await step(ErpActivities.create_erp_contacts, CreateErpContactsInput(
        tenant_id=tenant_id, drafts=found.missing, refresh=[] if found.missing else [draft],
        idempotency_key=idempotency_key),
        f"{'Create' if found.missing else 'Update'} {erp.label} contact {reference} in {entity_code}")
    return ErpContact(contact_id=written.contact_ids.get(reference) or found.found.get(reference, ""),
                      created=reference in written.ours)


__all__ = ["ErpContact", "find_or_create_erp_contact"]
