"""``starter.py sandbox …`` acts against the emulators in-process (the walkthrough test runs them against a whole
stack): what each act makes, and one clear line with exit 2 for an ID the emulator does not know."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

import starter
from canonical import ContractStatus
from canonical.ownership import SystemRole
from connectors import ironclad
from connectors.acts import acts_for
from connectors.registry import default_registry
from settings import Settings
from tests.helpers.deals import deal_properties
from tests.helpers.servers import SandboxHandle
from tests.helpers.webhooks import unique_deal_id
from tests.ingress.test_webhooks import contract_request


@pytest.fixture
def sandbox_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, sandboxes: dict[str, SandboxHandle]) -> None:
    for vendor in ("hubspot", "ironclad", "stripe", "xero"):
        monkeypatch.setenv(f"{vendor.upper()}_BASE_URL", sandboxes[vendor].base_url)
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))


async def test_sandbox_seed_move_edit_and_decline_act_as_the_vendors(
        sandbox_env: None, sandboxes: dict[str, SandboxHandle], capsys: pytest.CaptureFixture[str]) -> None:
    hubspot = sandboxes["hubspot"]
    assert await starter.run(["sandbox", "seed-deal", "--discount", "30", "--missing", "region", "--json"]) == 0
    seeded = json.loads(capsys.readouterr().out)
    deal_id = seeded["deal_id"]
    props = deal_properties(hubspot, deal_id)
    assert "revops_region" not in props and props["dealstage"] == "contractsent"

    assert await starter.run(["sandbox", "move-deal", deal_id]) == 0
    assert f"deal {deal_id} moved at closedwon" in capsys.readouterr().out
    assert await starter.run(["sandbox", "edit-deal", deal_id, "revops_region=NA"]) == 0
    assert deal_properties(hubspot, deal_id)["revops_region"] == "NA"

    # no contract launched yet: the act says so instead of guessing
    assert await starter.run(["sandbox", "sign", deal_id]) == 1
    assert capsys.readouterr().err.strip() == (f"deal {deal_id} has no Ironclad contract yet (see: starter.py "
                                               f"status {deal_id})")


async def test_sandbox_decline_cancels_the_contract_and_it_can_no_longer_be_signed(
        sandbox_env: None, sandboxes: dict[str, SandboxHandle], settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    clm = ironclad.from_settings(settings)
    try:
        launched = await clm.launch_contract(contract_request(settings, unique_deal_id()),
                                             idempotency_key=f"sandbox-cli-{uuid.uuid4()}")
        assert launched.clm_workflow_id
        assert await starter.run(["sandbox", "decline", launched.clm_workflow_id, "--reason", "budget frozen"]) == 0
        assert "cancelled" in capsys.readouterr().out
        assert (await clm.get_contract(launched.clm_workflow_id)).status is ContractStatus.CANCELLED
    finally:
        await clm.aclose()
    assert await starter.run(["sandbox", "sign", launched.clm_workflow_id]) == 1  # declined: cannot be signed
    assert "is cancelled" in capsys.readouterr().err


async def test_sandbox_unknown_ids_exit_2_with_one_line(
        sandbox_env: None, sandboxes: dict[str, SandboxHandle], capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["sandbox", "move-deal", "99999999999"], ["sandbox", "pay", "in_doesnotexist00"],
                 ["sandbox", "sign", "nosuchworkflow"]):
        assert await starter.run(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert await starter.run(["sandbox", "pay", "in_x", "--amount", "ten"]) == 2
    assert "--amount must be a decimal amount" in capsys.readouterr().err


async def test_sandbox_log_time_books_a_time_entry_on_the_roles_task(
        sandbox_env: None, sandboxes: dict[str, SandboxHandle], settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    from canonical import Account, Money, Project, ProjectTask, TaskChargeType
    from canonical.keys import project_code, time_task_name
    from connectors import xero

    erp = xero.from_settings(settings)
    tenant = settings.entity("US01").erp_tenant_id
    deal = uuid.uuid4().hex[:10]
    try:
        contact = await erp.upsert_customer(tenant, Account(name=f"Logged {deal} Inc", crm_id=deal, country="US"),
                                            contact=None, reference=f"cli-{deal}", idempotency_key=f"cli-{deal}")
        project = await erp.create_project(tenant, Project(
            code=project_code(deal, "US01"), name="Time", erp_contact_id=contact.erp_contact_id or "",
            erp_tenant_id=tenant, budget=Money.of("1000.00", "USD"), tasks=[ProjectTask(
                name=time_task_name("CONSULT"), charge_type=TaskChargeType.TIME, rate=Money.of("150.00", "USD"))]),
            idempotency_key=f"cli-p-{deal}")
        assert await starter.run(["sandbox", "log-time", project.code, "--hours", "1.5", "--user",
                                  "consultant@example.com", "--task", "CONSULT", "--date", "2026-11-03",
                                  "--json"]) == 0
        logged = json.loads(capsys.readouterr().out)
        assert (logged["minutes"], logged["date"], logged["task"], logged["status"]) == (
            90, "2026-11-03", "CONSULT time", "ACTIVE")
        [entry] = await erp.time_entries(tenant, project.erp_id or "")
        assert (entry.erp_id, entry.minutes) == (logged["time_entry"], 90)

        assert await starter.run(["sandbox", "log-time", project.code, "--hours", "-1", "--user", "x",
                                  "--task", "CONSULT"]) == 2
        assert await starter.run(["sandbox", "log-time", project.code, "--hours", "1", "--user",
                                  "consultant@example.com", "--task", "NOPE"]) == 2
        assert "has no task 'NOPE'" in capsys.readouterr().err
    finally:
        await erp.aclose()


@pytest.mark.parametrize("clm_name", ["ironclad", "docusign"])
async def test_sandbox_amend_names_the_amendment_the_clm_executed(
        clm_name: str, sandbox_env: None, monkeypatch: pytest.MonkeyPatch, settings: Settings,
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """``sandbox amend`` says which amendment the CLM executed, in any CLM's words (DocuSign answers with an
    envelope ID, Ironclad with a record ID): never ``None``."""
    box: SandboxHandle = request.getfixturevalue(f"{clm_name}_sandbox")
    monkeypatch.setenv("CLM_ADAPTER", clm_name)
    monkeypatch.setenv(f"{clm_name.upper()}_BASE_URL", box.base_url)
    clm_settings = settings.model_copy(update={"clm_adapter": clm_name})
    spec = default_registry(clm_settings).chosen(clm_settings, SystemRole.CLM)
    clm = spec.build(clm_settings)
    try:
        launched = await clm.launch_contract(contract_request(clm_settings, unique_deal_id()),
                                             idempotency_key=f"sandbox-cli-{uuid.uuid4()}")
        async with httpx.AsyncClient(timeout=10) as http:
            signed = await acts_for(spec, clm_settings, http).sign(launched.clm_workflow_id)
    finally:
        await clm.aclose()

    assert await starter.run(["sandbox", "amend", signed.record_id, "--sequence", "1",
                              "--set", "paymentTermsDays=60"]) == 0
    out = capsys.readouterr().out
    amendment_id = re.search(r"executed: (\S+);", out)
    assert amendment_id and amendment_id.group(1) not in ("None", ""), out
    assert amendment_id.group(1) != signed.record_id  # the amendment's own ID, not the contract's


async def test_sandbox_accept_milestone_records_the_acceptance_the_erp_reports(
        sandbox_env: None, sandboxes: dict[str, SandboxHandle], settings: Settings,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A project manager accepts MS-DESIGN of a project: the ERP then reports that milestone (only) accepted;
    accepting it again changes nothing; an unknown milestone exits 2."""
    from canonical import Account, Money, Project, ProjectTask, TaskChargeType
    from canonical.keys import milestone_task_name, project_code
    from connectors import xero

    erp = xero.from_settings(settings)
    tenant = settings.entity("US01").erp_tenant_id
    deal = uuid.uuid4().hex[:10]
    try:
        contact = await erp.upsert_customer(tenant, Account(name=f"Accepting {deal} Inc", crm_id=deal, country="US"),
                                            contact=None, reference=f"cli-{deal}", idempotency_key=f"cli-{deal}")
        project = await erp.create_project(tenant, Project(
            code=project_code(deal, "US01"), name="Phases", erp_contact_id=contact.erp_contact_id or "",
            erp_tenant_id=tenant, budget=Money.of("30000.00", "USD"), tasks=[
                ProjectTask(name=milestone_task_name(code, name), charge_type=TaskChargeType.FIXED,
                            rate=Money.of(amount, "USD"))
                for code, name, amount in (("MS-DESIGN", "Design phase", "12000.00"),
                                           ("MS-BUILD", "Build phase", "18000.00"))]),
            idempotency_key=f"cli-p-{deal}")
        assert await erp.accepted_milestones(tenant, project.erp_id or "") == []
        for _ in range(2):
            assert await starter.run(["sandbox", "accept-milestone", project.code, "MS-DESIGN", "--by", "pm@acme",
                                      "--json"]) == 0
            shown = json.loads(capsys.readouterr().out)
            assert (shown["task"], shown["accepted_by"]) == ("MS-DESIGN Design phase", "pm@acme")
        assert await erp.accepted_milestones(tenant, project.erp_id or "") == ["MS-DESIGN"]
        assert await starter.run(["sandbox", "accept-milestone", project.code, "MS-NOPE"]) == 2
        assert "MS-NOPE" in capsys.readouterr().err
    finally:
        await erp.aclose()
