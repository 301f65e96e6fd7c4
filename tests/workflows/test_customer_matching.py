"""Quote-to-cash meets a customer finance already keyed into the ERP by hand (time-skipping server, in-memory
ports, the real workflow and activities): an exact match is linked, never duplicated and never archived by a
compensation; an ambiguous one waits in a visible ``customer_match`` exception until a person picks a candidate
(a pick outside the candidates is refused at once) or says it is a new customer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.worker import Worker

from canonical.exceptions import ExceptionKind
from canonical.matching import CustomerCandidate, MatchKind, MatchRule
from connectors.errors import Rejected
from runtime.launch import start_quote_to_cash
from settings import Settings
from tests.helpers.activities import role_activities
from tests.helpers.fakes import FakePorts, fake_deal
from tests.helpers.outcomes import deal_outcome
from tests.helpers.waiting import eventually
from workflows.models import CustomerMatchChoice, QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


@pytest_asyncio.fixture
async def rig(time_skipping_env: Any, settings: Settings) -> AsyncIterator[tuple[Client, Settings, FakePorts]]:
    ports = FakePorts()
    ports.env = time_skipping_env  # type: ignore[attr-defined]
    own = settings.model_copy(update={"task_queue": f"matching-{uuid.uuid4()}", "activity_retry_max_seconds": 1.0,
                                      "contract_poll_interval_seconds": 60.0})
    client: Client = time_skipping_env.client
    async with Worker(client, task_queue=own.task_queue, workflows=[QuoteToCashWorkflow],
                      activities=role_activities(own, **ports.as_kwargs())):
        yield client, own, ports


async def status_of(handle: WorkflowHandle[Any, Any]) -> QuoteToCashStatus:
    return await handle.query(QuoteToCashWorkflow.status)  # type: ignore[no-any-return]


async def signed_when_out(handle: WorkflowHandle[Any, Any], ports: FakePorts) -> None:
    status = await eventually(lambda: status_of(handle), lambda s: s.stage is Stage.AWAITING_SIGNATURE,
                              what="contract out for signature")
    assert status.contract and status.contract.clm_workflow_id
    ports.clm.sign(status.contract.clm_workflow_id)


async def signed_and_polled(handle: WorkflowHandle[Any, Any], ports: FakePorts) -> None:
    """Signed, and the contract poll's hour passed (time skips only while a result is awaited otherwise)."""
    await signed_when_out(handle, ports)
    await ports.env.sleep(120)  # type: ignore[attr-defined]


async def refused(handle: WorkflowHandle[Any, Any], choice: CustomerMatchChoice) -> str:
    """The validator's reason for refusing ``choice`` (the update is rejected before it is accepted)."""
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(QuoteToCashWorkflow.choose_customer_match, choice)
    return str(failed.value.cause)


def our_contacts(ports: FakePorts, tenant: str) -> dict[str, str]:
    return {ref: a.erp_contact_id or "" for ref, a in ports.erp.contacts.get(tenant, {}).items()}


async def test_a_customer_keyed_by_hand_with_the_same_legal_name_is_linked_not_duplicated(
        rig: tuple[Client, Settings, FakePorts]) -> None:
    client, settings, ports = rig
    tenant = settings.entity("US01").erp_tenant_id
    ports.erp.keyed[tenant] = [CustomerCandidate(record_id="hand-1", name="FAKE CO, Inc.", country="US"),
                               CustomerCandidate(record_id="hand-2", name="Other Co", country="US")]
    deal = fake_deal()
    deal_id = ports.add_deal(deal)

    handle = await start_quote_to_cash(client, settings, deal_id)
    await signed_when_out(handle, ports)
    result = await deal_outcome(handle)

    assert result.outcome is Stage.PROVISIONED
    assert deal.account is not None
    reference = f"hubspot-company-{deal.account.crm_id}-US01"
    assert our_contacts(ports, tenant) == {reference: "hand-1"}, "linked, and no second contact created"
    assert ports.erp.links == [(tenant, "hand-1", reference)]
    assert [e.erp_contact_id for e in result.engagements] == ["hand-1"]
    status = await status_of(handle)
    assert [m.name for m in status.milestones if m.name.startswith("customer_")][0] == "customer_matched"


async def test_a_compensation_never_archives_the_record_finance_keyed(rig: tuple[Client, Settings, FakePorts]) -> None:
    client, settings, ports = rig
    tenant = settings.entity("US01").erp_tenant_id
    ports.erp.keyed[tenant] = [CustomerCandidate(record_id="hand-9", name="Fake Co", country="US")]
    ports.billing.refuse["create_schedule"] = Rejected("refused")
    deal_id = ports.add_deal(fake_deal())

    handle = await start_quote_to_cash(client, settings, deal_id)
    await signed_when_out(handle, ports)
    result = await deal_outcome(handle)

    assert result.outcome is Stage.FAILED
    assert ports.erp.archived == [], "finance's own contact is not the run's to archive"


async def test_an_ambiguous_match_waits_for_a_person_who_picks_one(rig: tuple[Client, Settings, FakePorts]) -> None:
    client, settings, ports = rig
    tenant = settings.entity("US01").erp_tenant_id
    ports.erp.keyed[tenant] = [CustomerCandidate(record_id="hand-a", name="Fake Co", country="US"),
                               CustomerCandidate(record_id="hand-b", name="Fake Co.", country="US",
                                                 email="ap@fake.example")]
    deal = fake_deal()
    deal_id = ports.add_deal(deal)

    handle = await start_quote_to_cash(client, settings, deal_id)
    await signed_and_polled(handle, ports)
    status = await eventually(lambda: status_of(handle),
                              lambda s: s.exception_kind is ExceptionKind.CUSTOMER_MATCH, what="customer match asked")
    [pending] = status.customer_matches
    assert pending.legal_entity == "US01" and pending.match.kind is MatchKind.AMBIGUOUS
    assert pending.match.rule is MatchRule.NAME_COUNTRY
    assert {c.record_id for c in pending.match.candidates} == {"hand-a", "hand-b"}
    assert "pick" in status.waiting_for and status.stage is Stage.PROVISIONING
    assert ports.erp.contacts.get(tenant, {}) == {}, "nothing created while a person decides"
    assert ports.crm.written[deal_id]["revops_status"] == "customer_match"

    assert "not one of the candidates" in await refused(handle, CustomerMatchChoice(
        legal_entity="US01", record_id="hand-z", chosen_by="ana"))
    assert "no customer match waits in EU01" in await refused(handle, CustomerMatchChoice(
        legal_entity="EU01", record_id="hand-a", chosen_by="ana"))
    assert "exactly one" in await refused(handle, CustomerMatchChoice(
        legal_entity="US01", record_id="hand-a", new_customer=True, chosen_by="ana"))
    chosen = await handle.execute_update(QuoteToCashWorkflow.choose_customer_match,
                                         CustomerMatchChoice(legal_entity="US01", record_id="hand-b", chosen_by="ana"))
    assert chosen.record_id == "hand-b"

    result = await deal_outcome(handle)
    assert result.outcome is Stage.PROVISIONED
    assert deal.account is not None
    assert our_contacts(ports, tenant) == {f"hubspot-company-{deal.account.crm_id}-US01": "hand-b"}
    final = await status_of(handle)
    assert final.exception_kind is ExceptionKind.NONE and final.customer_matches == []
    names = [m.name for m in final.milestones]
    assert "customer_match_asked" in names and "customer_matched" in names
    assert any("ana chose contact hand-b" in t.note for t in final.timeline)


async def test_a_person_may_say_the_customer_is_new(rig: tuple[Client, Settings, FakePorts]) -> None:
    client, settings, ports = rig
    tenant = settings.entity("US01").erp_tenant_id
    ports.erp.keyed[tenant] = [CustomerCandidate(record_id="hand-x", name="Fake Co", country="US"),
                               CustomerCandidate(record_id="hand-y", name="Fake Co", country="US")]
    deal_id = ports.add_deal(fake_deal())

    handle = await start_quote_to_cash(client, settings, deal_id)
    await signed_and_polled(handle, ports)
    await eventually(lambda: status_of(handle), lambda s: bool(s.customer_matches), what="customer match asked")
    await handle.execute_update(QuoteToCashWorkflow.choose_customer_match,
                                CustomerMatchChoice(legal_entity="US01", new_customer=True, chosen_by="ana"))
    result = await deal_outcome(handle)

    assert result.outcome is Stage.PROVISIONED
    [created] = our_contacts(ports, tenant).values()
    assert created not in ("hand-x", "hand-y") and ports.erp.links == []


async def test_starter_match_lists_the_candidates_then_a_person_picks_one(
        rig: tuple[Client, Settings, FakePorts], capsys: pytest.CaptureFixture[str]) -> None:
    """From the command line, by deal ID: the candidates with what tells them apart, a refused pick (exit 1), a
    usage error (exit 2), then the pick that lets provisioning go on."""
    import starter
    from bootstrap import for_cli

    client, settings, ports = rig
    tenant = settings.entity("US01").erp_tenant_id
    ports.erp.keyed[tenant] = [
        CustomerCandidate(record_id="hand-m", name="Fake Co", country="US", tax_number="US-11", email="a@fake.example"),
        CustomerCandidate(record_id="hand-n", name="Fake Co", country="US", reference="C-0042")]
    deal_id = ports.add_deal(fake_deal())
    handle = await start_quote_to_cash(client, settings, deal_id)
    await signed_and_polled(handle, ports)
    await eventually(lambda: status_of(handle), lambda s: bool(s.customer_matches), what="customer match asked")

    async with for_cli(settings, client=client) as parts:
        assert await starter.run(["match", deal_id], parts=parts) == 0
        listed = capsys.readouterr().out
        assert "US01 [erp]: 2" in listed and "--pick hand-m" in listed and "tax number US-11" in listed
        assert "number C-0042" in listed
        assert await starter.run(["match", deal_id, "--pick", "hand-q", "--by", "ana"], parts=parts) == 1
        assert "not one of the candidates" in capsys.readouterr().err
        assert await starter.run(["match", deal_id, "--pick", "hand-m", "--new", "--by", "ana"], parts=parts) == 2
        assert await starter.run(["match", deal_id, "--pick", "hand-n", "--by", "ana"], parts=parts) == 0
        assert "takes contact hand-n" in capsys.readouterr().out
    result = await deal_outcome(handle)
    assert result.outcome is Stage.PROVISIONED and [e.erp_contact_id for e in result.engagements] == ["hand-n"]


async def test_a_new_customer_the_erp_refuses_goes_back_to_the_person_with_the_reason(
        rig: tuple[Client, Settings, FakePorts]) -> None:
    """A person says "new customer", but the ERP holds the name already (Xero refuses a second contact of one
    name): the run does not fail; it asks again with the ERP's reason, and the next pick settles it."""
    client, settings, ports = rig
    tenant = settings.entity("US01").erp_tenant_id
    ports.erp.keyed[tenant] = [CustomerCandidate(record_id="hand-r", name="Fake Co", country="US"),
                               CustomerCandidate(record_id="hand-s", name="Fake Co", country="US")]
    ports.erp.refuse["create_customers"] = Rejected("The contact name Fake Co is already assigned to another contact")
    deal = fake_deal()
    deal_id = ports.add_deal(deal)
    handle = await start_quote_to_cash(client, settings, deal_id)
    await signed_and_polled(handle, ports)
    await eventually(lambda: status_of(handle), lambda s: bool(s.customer_matches), what="customer match asked")
    await handle.execute_update(QuoteToCashWorkflow.choose_customer_match,
                                CustomerMatchChoice(legal_entity="US01", new_customer=True, chosen_by="ana"))

    again = await eventually(lambda: status_of(handle),
                             lambda s: bool(s.customer_matches) and bool(s.customer_matches[0].match.refused),
                             what="asked again")
    assert "already assigned" in again.customer_matches[0].match.refused
    assert again.exception_kind is ExceptionKind.CUSTOMER_MATCH and again.stage is Stage.PROVISIONING
    assert any("asked again" in t.note for t in again.timeline)
    await handle.execute_update(QuoteToCashWorkflow.choose_customer_match,
                                CustomerMatchChoice(legal_entity="US01", record_id="hand-s", chosen_by="ana"))
    result = await deal_outcome(handle)
    assert result.outcome is Stage.PROVISIONED and [e.erp_contact_id for e in result.engagements] == ["hand-s"]
    final = await status_of(handle)
    assert sum(1 for m in final.milestones if m.name == "customer_match_asked") == 1  # one question, asked twice


async def test_a_billing_customer_keyed_by_hand_is_linked_or_put_to_a_person(
        rig: tuple[Client, Settings, FakePorts]) -> None:
    """The same rules before creating the billing customer: an exact one (same legal name and country) is linked
    and never deleted by a compensation; two alike wait for a person (``--system billing``)."""
    client, settings, ports = rig
    ports.billing.keyed = [CustomerCandidate(record_id="cus_hand1", name="Fake Co Inc", country="US")]
    ports.billing.refuse["create_schedule"] = Rejected("refused")
    deal = fake_deal()
    handle = await start_quote_to_cash(client, settings, ports.add_deal(deal))
    await signed_when_out(handle, ports)
    result = await deal_outcome(handle)
    assert deal.account is not None
    assert result.outcome is Stage.FAILED and ports.billing.deleted == [], "finance's customer is not deleted"
    assert ports.billing.links == [("cus_hand1", f"hubspot-company-{deal.account.crm_id}-US01")]

    del ports.billing.refuse["create_schedule"]
    ports.billing.keyed = [CustomerCandidate(record_id="cus_a", name="Fake Co", country="US"),
                           CustomerCandidate(record_id="cus_b", name="Fake Co.", country="US")]
    second = fake_deal()
    handle = await start_quote_to_cash(client, settings, ports.add_deal(second))
    await signed_and_polled(handle, ports)
    status = await eventually(lambda: status_of(handle),
                              lambda s: any(p.system == "billing" for p in s.customer_matches),
                              what="billing customer match asked")
    [pending] = [p for p in status.customer_matches if p.system == "billing"]
    # the first deal's company's customer (same legal name) carries our reference: another account of ours, no
    # candidate
    assert {c.record_id for c in pending.match.candidates} == {"cus_a", "cus_b"}
    assert "no customer match waits in US01" in await refused(handle, CustomerMatchChoice(
        legal_entity="US01", record_id="cus_a", chosen_by="ana"))  # the ERP's match was settled already
    await handle.execute_update(QuoteToCashWorkflow.choose_customer_match, CustomerMatchChoice(
        legal_entity="US01", system="billing", record_id="cus_a", chosen_by="ana"))
    result = await deal_outcome(handle)
    assert result.outcome is Stage.PROVISIONED and [e.billing_customer_id for e in result.engagements] == ["cus_a"]
