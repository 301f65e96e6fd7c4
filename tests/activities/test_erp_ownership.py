"""The field-ownership guard runs in the ERP activities for every ERP adapter, not inside one adapter: a refresh
of a known contact never overwrites an ERP-owned field the ERP already holds (it may fill an empty one), and the
ERP-owned project budget changed in the ERP since we last wrote it is refused as an ``OwnershipViolation``.

Each case runs against the in-memory ERP and against the Xero adapter over real HTTP (the emulator)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.erp import ErpActivities
from activities.models import CreateErpContactsInput, GuardedProjectInput
from canonical import Account, Money, Project, ProjectTask, TaskChargeType
from canonical.backfill import ErpCustomerDraft
from connectors.ports import ErpPort
from settings import Settings
from tests.helpers.fakes import FakeErp


@pytest_asyncio.fixture(params=["memory", "xero"])
async def erp_and_tenant(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[tuple[ErpPort, str]]:
    if request.param == "memory":
        yield FakeErp(), "tenant-memory"
        return
    from connectors.xero import from_settings

    request.getfixturevalue("xero_sandbox")
    adapter = from_settings(settings)
    try:
        yield adapter, settings.entity("US01").erp_tenant_id
    finally:
        await adapter.aclose()


def _uid() -> str:
    return uuid.uuid4().hex[:10]


async def test_erp_ownership_refresh_never_overwrites_an_erp_owned_field_the_erp_holds(
        erp_and_tenant: tuple[ErpPort, str]) -> None:
    erp, tenant = erp_and_tenant
    ref = f"crm-company-{_uid()}"
    # the ERP's finance team set the tax number and the payment terms on the contact
    await erp.upsert_customer(tenant, Account(name=f"Old {ref}", tax_number="ERP-TAX-1", payment_terms_days=45),
                              contact=None, reference=ref, idempotency_key=f"seed-{ref}")
    draft = ErpCustomerDraft(account=Account(name=f"New {ref}", tax_number="CRM-TAX", payment_terms_days=30),
                             reference=ref)

    done = await ActivityEnvironment().run(ErpActivities(erp=erp).create_erp_contacts, CreateErpContactsInput(
        tenant_id=tenant, refresh=[draft], idempotency_key=f"q2c-{ref}"))

    held = await erp.find_customer(tenant, ref)
    assert held is not None and done.contact_ids == {ref: held.erp_contact_id}
    assert (held.tax_number, held.payment_terms_days) == ("ERP-TAX-1", 45)  # the ERP's values stay
    assert held.name == f"New {ref}"  # the CRM owns the name: it is written


async def test_erp_ownership_refresh_fills_an_empty_erp_owned_field(erp_and_tenant: tuple[ErpPort, str]) -> None:
    erp, tenant = erp_and_tenant
    ref = f"crm-company-{_uid()}"
    await erp.upsert_customer(tenant, Account(name=f"Bare {ref}"), contact=None, reference=ref,
                              idempotency_key=f"seed-{ref}")
    draft = ErpCustomerDraft(account=Account(name=f"Bare {ref}", tax_number="CRM-TAX-2"), reference=ref)

    await ActivityEnvironment().run(ErpActivities(erp=erp).create_erp_contacts, CreateErpContactsInput(
        tenant_id=tenant, refresh=[draft], idempotency_key=f"q2c-{ref}"))

    held = await erp.find_customer(tenant, ref)
    assert held is not None and held.tax_number == "CRM-TAX-2"


async def _project(erp: ErpPort, tenant: str, budget: str) -> Project:
    account = await erp.upsert_customer(tenant, Account(name=f"Projects {_uid()}"), contact=None,
                                        reference=f"crm-company-{_uid()}", idempotency_key=_uid())
    code = f"P-{_uid()}"
    return await erp.create_project(tenant, Project(
        code=code, name=f"Project {code}", erp_contact_id=account.erp_contact_id or "", erp_tenant_id=tenant,
        budget=Money.of(budget, "USD"), tasks=[ProjectTask(name="Build", charge_type=TaskChargeType.FIXED,
                                                           rate=Money.of(budget, "USD"))]),
        idempotency_key=f"create-{code}")


async def test_erp_ownership_budget_changed_in_the_erp_is_refused(erp_and_tenant: tuple[ErpPort, str]) -> None:
    erp, tenant = erp_and_tenant
    project = await _project(erp, tenant, "1000.00")
    # finance moves the budget in the ERP; then an amendment wants to set it from what we last wrote
    await erp.update_project(tenant, project.model_copy(update={"budget": Money.of("1500.00", "USD")}),
                             idempotency_key=f"finance-{project.code}")
    wanted = project.model_copy(update={"budget": Money.of("2000.00", "USD")})

    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(ErpActivities(erp=erp).update_erp_project, GuardedProjectInput(
            tenant_id=tenant, project=wanted, expected_budget="1000.00", idempotency_key=f"amend-{project.code}"))

    assert refused.value.type == "OwnershipViolation" and refused.value.non_retryable
    assert "the ERP holds" in refused.value.message and "Xero" not in refused.value.message
    assert project.erp_id and (await erp.get_project(tenant, project.erp_id)).budget.amount == Decimal("1500.00")


async def test_erp_ownership_budget_unchanged_in_the_erp_is_written(erp_and_tenant: tuple[ErpPort, str]) -> None:
    erp, tenant = erp_and_tenant
    project = await _project(erp, tenant, "1000.00")
    wanted = project.model_copy(update={"budget": Money.of("2000.00", "USD")})

    written = await ActivityEnvironment().run(ErpActivities(erp=erp).update_erp_project, GuardedProjectInput(
        tenant_id=tenant, project=wanted, expected_budget="1000.00", idempotency_key=f"amend-{project.code}"))

    assert written.budget.amount == Decimal("2000.00")
    assert project.erp_id and (await erp.get_project(tenant, project.erp_id)).budget.amount == Decimal("2000.00")
