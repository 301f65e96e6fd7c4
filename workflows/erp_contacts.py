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
    from activities.models import (
        CreateErpContactsInput,
        FindErpContactsInput,
        LinkErpContactInput,
        MatchErpContactInput,
    )
    from canonical.backfill import ErpCustomerDraft
    from canonical.matching import CustomerMatch, MatchKind
    from canonical.systems import System
    from workflows.steps import STEP_FAILED, failure_reason

#: ``WorkflowStatus.step``: ``(activity, argument, summary, local=...) -> result``
Step = Callable[..., Awaitable[Any]]


#: ``choose(match) -> contact ID or None``: a person picks among an ambiguous match's candidates (None: a new
#: customer); the caller waits in its visible ``customer_match`` exception meanwhile
Chooser = Callable[[CustomerMatch], Awaitable[str | None]]


@dataclass(frozen=True)
class ErpContact:
    """The contact a flow uses, whether this call's key made it (then it is the flow's to compensate), and
    whether it is a record finance had keyed that the flow linked instead of creating a duplicate."""

    contact_id: str
    created: bool
    matched: bool = False


async def find_or_create_erp_contact(step: Step, *, erp: System, tenant_id: str, entity_code: str,
                                     draft: ErpCustomerDraft, idempotency_key: str,
                                     refresh: bool = False, choose: Chooser | None = None) -> ErpContact:
    """The ERP contact of ``draft.reference`` in ``tenant_id``: found, or created once under
    ``idempotency_key``; with ``refresh``, a found one is brought up to date with the draft.

    With ``choose`` (quote-to-cash), a contact missing by reference is first looked for among the records
    finance keyed by hand (``canonical.matching``): an exact match is linked (our reference written on it), an
    ambiguous one is put to ``choose``; only when nobody matches, or the person says it is a new customer, is
    one created. Never a duplicate."""
    reference = draft.reference
    found = await step(ErpActivities.find_erp_contacts, FindErpContactsInput(tenant_id=tenant_id, drafts=[draft]),
                       f"Find {erp.label} contact {reference} in {entity_code}", local=True)
    if reference in found.found and not refresh:
        return ErpContact(contact_id=found.found[reference], created=False)
    if found.missing and choose is not None:
        match = await step(ErpActivities.match_erp_contact, MatchErpContactInput(tenant_id=tenant_id, draft=draft),
                           f"Look for {erp.label} contacts finance keyed like {reference} in {entity_code}",
                           local=True)
        chosen = match.record_id if match.kind is MatchKind.EXACT else None
        if match.kind is MatchKind.AMBIGUOUS:
            chosen = await choose(match)
        attempt = 0
        while match.kind is MatchKind.AMBIGUOUS and not chosen:
            # a person said "a new customer": the ERP may still refuse it (Xero: a name it already holds); then
            # the person is asked again with the ERP's reason (rename in the ERP and pick, or pick), never a failure
            attempt += 1
            try:
                made = await step(ErpActivities.create_erp_contacts, CreateErpContactsInput(
                    tenant_id=tenant_id, drafts=found.missing, idempotency_key=f"{idempotency_key}:new-{attempt}"),
                    f"Create {erp.label} contact {reference} in {entity_code} (a person's choice)")
                return ErpContact(contact_id=made.contact_ids.get(reference, ""), created=reference in made.ours)
            except STEP_FAILED as err:
                match = match.model_copy(update={"refused": f"{erp.label} refused a new contact: "
                                                            f"{failure_reason(err)}"})
                chosen = await choose(match)
        if chosen:
            linked = await step(ErpActivities.link_erp_contact, LinkErpContactInput(
                tenant_id=tenant_id, contact_id=chosen, reference=reference,
                idempotency_key=f"{idempotency_key}:link"),
                f"Link {erp.label} contact {chosen} to {reference} in {entity_code}")
            return ErpContact(contact_id=linked.contact_ids.get(reference) or chosen, created=False, matched=True)
    written = await step(ErpActivities.create_erp_contacts, CreateErpContactsInput(
        tenant_id=tenant_id, drafts=found.missing, refresh=[] if found.missing else [draft],
        idempotency_key=idempotency_key),
        f"{'Create' if found.missing else 'Update'} {erp.label} contact {reference} in {entity_code}")
    return ErpContact(contact_id=written.contact_ids.get(reference) or found.found.get(reference, ""),
                      created=reference in written.ours)


__all__ = ["Chooser", "ErpContact", "find_or_create_erp_contact"]
