"""The Xero adapter's amendment operations against the emulator: read a project, update its budget,
deadline and tasks (``PUT /Projects/{id}``, ``PUT /Projects/{id}/Tasks/{taskId}``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from canonical import ProjectTask, TaskChargeType
from connectors.xero import XeroErp
from tests.connectors.test_xero_adapter import erp, new_contact, project_for, stored, task, tenant, usd  # noqa: F401
from tests.helpers.servers import SandboxHandle


async def test_update_project_sets_budget_deadline_and_tasks_once(erp: XeroErp, tenant: str,  # noqa: F811
                                                                   xero_sandbox: SandboxHandle) -> None:
    contact = await new_contact(erp, tenant)
    assert contact.erp_contact_id
    created = await erp.create_project(tenant, project_for(contact.erp_contact_id, tenant, task("Consulting")),
                                       idempotency_key=f"proj-{contact.erp_contact_id}")
    assert created.erp_id
    held = await erp.get_project(tenant, created.erp_id)
    assert held.code == created.code and held.budget == usd("12000.00") and [t.name for t in held.tasks] == [
        "Consulting"]

    wanted = created.model_copy(update={
        "budget": usd("15500.00"), "deadline": date(2026, 3, 31),
        "tasks": [task("Consulting", rate="175.00"),
                  ProjectTask(name="MS-EXTRA Extra phase", charge_type=TaskChargeType.FIXED, rate=usd("3500.00"))]})
    updated = await erp.update_project(tenant, wanted, idempotency_key=f"amend-{created.erp_id}")
    again = await erp.update_project(tenant, wanted, idempotency_key=f"amend-{created.erp_id}")

    assert updated.budget == usd("15500.00") and updated.deadline == date(2026, 3, 31)
    assert again == updated
    tasks = stored(xero_sandbox, "task", tenant, projectId=created.erp_id)
    assert sorted((t["name"], t["rate"]["value"]) for t in tasks) == [
        ("Consulting", "175.00"), ("MS-EXTRA Extra phase", "3500.00")]
    doc = xero_sandbox.store.get("project", created.erp_id, tenant=tenant)
    assert doc["name"].startswith(f"[{created.code}]"), "the name stays as Xero has it"
    assert Decimal(doc["estimate"]["value"]) == Decimal("15500.00")
