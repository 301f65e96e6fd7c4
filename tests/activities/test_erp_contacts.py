"""The one ERP contact find-or-create (quote-to-cash and the backfill): look up, then create exactly what was
missing; a contact made under a key stays that key's to compensate, even when the create's answer was lost."""

from __future__ import annotations

from temporalio.testing import ActivityEnvironment

from activities.erp import ErpActivities
from activities.models import CreateErpContactsInput, FindErpContactsInput
from canonical import Account, Contact
from canonical.backfill import ErpCustomerDraft
from tests.helpers.fakes import FakeErp

TENANT = "tenant-1"


def _draft(n: int) -> ErpCustomerDraft:
    return ErpCustomerDraft(account=Account(name=f"Co {n}", crm_id=str(n)), reference=f"hubspot-company-{n}-US01",
                            contact=Contact(email=f"billing@co{n}.example"))


async def test_erp_contacts_find_then_create_exactly_the_missing_in_batches() -> None:
    erp = FakeErp()
    activities, env = ErpActivities(erp=erp), ActivityEnvironment()
    await erp.create_customers(TENANT, [_draft(2)], idempotency_key="earlier")
    drafts = [_draft(n) for n in range(1, 6)]

    plan = await env.run(activities.find_erp_contacts, FindErpContactsInput(tenant_id=TENANT, drafts=drafts,
                                                                           batch_size=2))
    assert [d.reference for d in plan.missing] == [d.reference for d in drafts if d.reference != drafts[1].reference]
    assert (plan.existing, plan.requests, list(plan.found)) == (1, 3, [drafts[1].reference])

    done = await env.run(activities.create_erp_contacts, CreateErpContactsInput(
        tenant_id=TENANT, drafts=plan.missing, batch_size=3, idempotency_key="page-1"))
    assert (done.created, done.requests) == (4, 2)
    assert erp.batches[1:] == [(TENANT, [d.reference for d in plan.missing[:3]]),
                               (TENANT, [plan.missing[3].reference])]
    assert sorted(done.contact_ids) == sorted(d.reference for d in plan.missing)
    assert done.ours == [d.reference for d in plan.missing]


async def test_erp_contacts_a_contact_made_under_the_key_is_still_ours_after_a_lost_answer() -> None:
    erp = FakeErp()
    activities, env = ErpActivities(erp=erp), ActivityEnvironment()
    draft = _draft(7)
    # the create went through but its answer was lost: the flow looks again and finds the contact
    await env.run(activities.create_erp_contacts, CreateErpContactsInput(
        tenant_id=TENANT, drafts=[draft], idempotency_key="q2c:erp-contact-US01"))
    plan = await env.run(activities.find_erp_contacts, FindErpContactsInput(tenant_id=TENANT, drafts=[draft]))
    held = erp.contacts[TENANT][draft.reference].erp_contact_id
    assert plan.missing == [] and plan.found == {draft.reference: held}

    mine = await env.run(activities.create_erp_contacts, CreateErpContactsInput(
        tenant_id=TENANT, refresh=[draft], idempotency_key="q2c:erp-contact-US01"))
    assert mine.ours == [draft.reference] and mine.created == 0 and mine.existing == 1

    # the same contact seen by another run's key is found and refreshed, but not that run's to compensate
    other = await env.run(activities.create_erp_contacts, CreateErpContactsInput(
        tenant_id=TENANT, refresh=[draft], idempotency_key="another-run:erp-contact-US01"))
    assert other.ours == [] and other.contact_ids == mine.contact_ids
