"""One conformance suite per port: the same cases run against each in-memory fake (``tests/helpers/fakes.py``)
and each emulator-backed adapter over real HTTP, so the fakes the branch tests use cannot drift from the
adapters the flows use. Each case checks the port's ``runtime_checkable`` protocol and its behaviour: what
is created is found again, a repeated idempotency key returns the first record, an unknown ID is ``NotFound``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from canonical import (
    Account,
    BillingInterval,
    BillingModel,
    BillingSchedule,
    BillingScheduleKind,
    Contact,
    ContractStatus,
    ContractTerms,
    CreditNote,
    Money,
    Payment,
    Project,
    ProjectTask,
    ScheduledCharge,
    TaskChargeType,
)
from canonical.backfill import ErpCustomerDraft
from canonical.keys import milestone_task_name, time_task_name
from canonical.ownership import SystemRole
from canonical.refs import ownership_marker
from canonical.requests import AccountFigures, ContractRequest
from connectors.acts import acts_for
from connectors.errors import NotFound
from connectors.ports import (
    BillingPort,
    ClmPort,
    CrmPort,
    ErpChangeFeed,
    ErpCustomers,
    ErpPort,
    ErpProjects,
    ErpReceivables,
)
from connectors.registry import default_registry
from connectors.routing import ErpRouter
from settings import Settings
from tests.helpers.fakes import FakeBilling, FakeClm, FakeCrm, FakeErp, fake_invoice
from tests.helpers.servers import with_vendor

MEMORY = "memory"


def uid() -> str:
    return uuid.uuid4().hex[:10]


def unknown_id() -> str:
    """An ID no system holds, in a shape every vendor accepts (a GUID; digits for numeric IDs elsewhere)."""
    return str(uuid.uuid4())


async def _adapter(request: pytest.FixtureRequest, settings: Settings, sandbox: str,
                   build: Callable[[Settings], Any]) -> AsyncIterator[Any]:
    request.getfixturevalue(sandbox)
    adapter = build(settings)
    try:
        yield adapter
    finally:
        await adapter.aclose()


# -- CRM -----------------------------------------------------------------------------------------------
@pytest_asyncio.fixture(params=[MEMORY, "hubspot", "salesforce"])
async def crm(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[CrmPort]:
    if request.param == MEMORY:
        yield FakeCrm()
        return
    if request.param == "salesforce":
        from connectors.salesforce import from_settings as salesforce_adapter

        async for adapter in _adapter(request, settings, "salesforce_sandbox", salesforce_adapter):
            yield adapter
        return
    from connectors.hubspot import from_settings

    async for adapter in _adapter(request, settings, "hubspot_sandbox", from_settings):
        yield adapter


def unknown_crm_id(crm: CrmPort, prefix: str) -> str:
    """An ID of the CRM's own form that no record has (Salesforce: 18 characters with its object's key prefix)."""
    number = uuid.uuid4().int % 10**12
    if crm.vendor == "salesforce":
        from connectors.salesforce.ids import to_18

        return to_18(f"{prefix}{number:012d}")
    return str(number)


async def test_conformance_crm_is_the_port(crm: CrmPort) -> None:
    assert isinstance(crm, CrmPort)
    assert isinstance(crm.vendor, str) and crm.vendor


async def test_conformance_crm_unknown_deal_is_not_found(crm: CrmPort) -> None:
    deal_id = unknown_crm_id(crm, "006")
    with pytest.raises(NotFound):
        await crm.get_deal(deal_id)


async def test_conformance_crm_upsert_by_reference_twice_is_one_company(crm: CrmPort) -> None:
    domain = f"conformance-{uid()}.example"
    first = await crm.upsert_companies([Account(name=f"Conformance {domain}", domain=domain)])
    again = await crm.upsert_companies([Account(name=f"Conformance {domain} renamed", domain=f"www.{domain}")])

    assert len(first.ids) == 1 and first.ids == again.ids
    assert (first.created, first.updated, again.created, again.updated) == (1, 0, 0, 1)


async def test_conformance_crm_figures_for_an_unknown_company_are_not_found(crm: CrmPort) -> None:
    figures = [AccountFigures(currency="USD", billed="100.00", paid="0.00", outstanding="100.00", overdue="0.00",
                              credited="0.00")]
    with pytest.raises(NotFound):
        await crm.write_account_figures(unknown_crm_id(crm, "001"), figures)


# -- CLM -----------------------------------------------------------------------------------------------
@pytest_asyncio.fixture(params=[MEMORY, "ironclad", "docusign"])
async def clm(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[ClmPort]:
    if request.param == MEMORY:
        yield FakeClm()
        return
    if request.param == "docusign":
        from connectors.docusign import from_settings as docusign_adapter

        async for adapter in _adapter(request, settings, "docusign_sandbox", docusign_adapter):
            yield adapter
        return
    from connectors.ironclad import from_settings

    async for adapter in _adapter(request, settings, "ironclad_sandbox", from_settings):
        yield adapter


def contract_request(settings: Settings) -> ContractRequest:
    deal_id = f"deal-{uid()}"
    return ContractRequest(
        deal_crm_id=deal_id, title=f"Order Form {deal_id}",
        legal_entity="US01", counterparty=Account(name=f"Conformance {deal_id}", country="US"),
        signer=Contact(first_name="Ada", last_name="Lovelace", email="ada@conformance.example", role="signer"),
        terms=ContractTerms(start_date=date(2027, 1, 1), end_date=date(2027, 12, 31),
                            total_value=Money.of("12000.00", "USD"), billing_model=BillingModel.FIXED_FEE,
                            payment_terms_days=30, fixed_fee=Money.of("12000.00", "USD")))


async def test_conformance_clm_is_the_port(clm: ClmPort) -> None:
    assert isinstance(clm, ClmPort)


async def test_conformance_clm_launch_then_get_and_launch_again_under_the_key(clm: ClmPort,
                                                                              settings: Settings) -> None:
    request = contract_request(settings)
    key = f"launch-{uid()}"

    launched = await clm.launch_contract(request, idempotency_key=key)
    again = await clm.launch_contract(request, idempotency_key=key)
    assert launched.clm_workflow_id
    found = await clm.get_contract(launched.clm_workflow_id)

    assert again.clm_workflow_id == launched.clm_workflow_id
    assert found.clm_workflow_id == launched.clm_workflow_id and found.title == request.title
    assert found.status is not ContractStatus.EXECUTED and found.clm_record_id is None


async def test_conformance_clm_unknown_workflow_and_record_are_not_found(clm: ClmPort) -> None:
    with pytest.raises(NotFound):
        await clm.get_contract(unknown_id())
    with pytest.raises(NotFound):
        await clm.get_record(unknown_id())


async def test_conformance_clm_records_changed_since_a_future_moment_are_none(clm: ClmPort) -> None:
    """The amendment poll's read: one page and its cursor; nothing has changed after now."""
    assert await clm.records_changed_since(datetime.now(UTC) + timedelta(hours=1)) == ([], None)


# -- billing -------------------------------------------------------------------------------------------
@pytest_asyncio.fixture(params=[MEMORY, "stripe"])
async def billing(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[BillingPort]:
    if request.param == MEMORY:
        yield FakeBilling()
        return
    from connectors.stripe import from_settings

    async for adapter in _adapter(request, settings, "stripe_sandbox", from_settings):
        yield adapter


async def test_conformance_billing_is_the_port(billing: BillingPort) -> None:
    assert isinstance(billing, BillingPort)


async def test_conformance_billing_changes_since_a_future_moment_are_none(billing: BillingPort) -> None:
    """The billing poll's read: one page and its cursor; nothing has happened after now."""
    assert await billing.changes_since(datetime.now(UTC) + timedelta(hours=1)) == ([], None)


async def test_conformance_billing_customer_created_is_found_by_reference_and_kept_once(
        billing: BillingPort) -> None:
    reference = f"conformance-{uid()}"
    account = Account(name=f"Conformance {reference}", country="US")
    key = f"customer-{reference}"

    created = await billing.ensure_customer(account, contact=None, reference=reference, legal_entity="US01",
                                            idempotency_key=key)
    again = await billing.ensure_customer(account, contact=None, reference=reference, legal_entity="US01",
                                          idempotency_key=f"{key}-other-run")
    held = await billing.get_customer(created)

    assert again == created and await billing.find_customer(reference) == created
    assert held.customer_id == created and held.account.name == account.name
    assert held.legal_entity == "US01" and held.account.created_by == ownership_marker(key)
    assert await billing.find_customer(f"conformance-{uid()}") is None


async def test_conformance_billing_schedule_under_one_key_is_made_once(billing: BillingPort) -> None:
    reference = f"conformance-{uid()}"
    customer = await billing.ensure_customer(Account(name=f"Conformance {reference}", country="US"), contact=None,
                                             reference=reference, legal_entity="US01", idempotency_key=reference)
    schedule = BillingSchedule(
        kind=BillingScheduleKind.SUBSCRIPTION, customer_id=customer, currency="USD", start_date=date.today(),
        days_until_due=30, metadata={"legal_entity": "US01"},
        charges=[ScheduledCharge(product_code="PLATFORM", description="Platform licence",
                                 unit_amount=Money.of("120.00", "USD"), quantity=Decimal(3),
                                 interval=BillingInterval.MONTH)])

    first = await billing.create_schedule(schedule, idempotency_key=f"schedule-{reference}")
    again = await billing.create_schedule(schedule, idempotency_key=f"schedule-{reference}")

    assert first.billing_id and again.billing_id == first.billing_id
    assert first.refs == again.refs


async def test_conformance_billing_unknown_customer_and_invoice_are_not_found(billing: BillingPort) -> None:
    with pytest.raises(NotFound):
        await billing.get_customer(f"cus_{uid()}")
    with pytest.raises(NotFound):
        await billing.get_invoice(f"in_{uid()}")


# -- ERP -----------------------------------------------------------------------------------------------
#: a person accepting a milestone in the ERP's project system: (our project code, milestone code)
Accept = Callable[[str, str], Awaitable[object]]


@dataclass
class Erp:
    """One ERP under test, the tenant (legal entity) it keeps books for, and a person in its project system."""

    port: ErpPort
    tenant: str
    accept: Accept | None = None


@pytest_asyncio.fixture(params=[MEMORY, "xero", "netsuite", "netsuite-oauth2", "routed-memory", "routed-xero",
                                "routed-netsuite"])
async def erp(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Erp]:
    """Each ERP adapter, alone and behind the router of legal entities (the port every flow sees); NetSuite also
    with OAuth 2.0 machine to machine instead of TBA."""
    routed = request.param.startswith("routed-")
    if request.param.endswith(MEMORY):
        tenant = "tenant-memory"
        fake = FakeErp()

        async def accept_in_memory(code: str, milestone: str) -> None:
            fake.accept_milestone(fake.projects[code].erp_id or "", milestone)

        yield Erp(ErpRouter({tenant: fake}) if routed else fake, tenant, accept_in_memory)  # type: ignore[arg-type]
        return
    registry = default_registry(settings)
    async with httpx.AsyncClient(timeout=10) as http:
        if "netsuite" in request.param:
            from connectors.netsuite import from_settings as netsuite_adapter

            if request.param.endswith("oauth2"):
                settings = with_vendor(settings, "netsuite", auth="oauth2")
            subsidiary = settings.entity("US01").erp_tenant_id  # the emulator's subsidiaries are the entities' tenants
            person = acts_for(registry.spec(SystemRole.ERP, "netsuite"), settings, http)
            accept: Accept = lambda code, m: person.accept_milestone(code, m, accepted_by="pm@example.com")  # noqa: E731
            async for adapter in _adapter(request, settings, "netsuite_sandbox", netsuite_adapter):
                yield Erp(ErpRouter({subsidiary: adapter}) if routed else adapter, subsidiary,  # type: ignore[arg-type]
                          accept)
            return
        from connectors.xero import from_settings

        tenant = settings.entity("US01").erp_tenant_id
        pm = acts_for(registry.spec(SystemRole.ERP, "xero"), settings, http)
        accept = lambda code, m: pm.accept_milestone(code, m, accepted_by="pm@example.com")  # noqa: E731
        async for adapter in _adapter(request, settings, "xero_sandbox", from_settings):
            yield Erp(ErpRouter({tenant: adapter}) if routed else adapter, tenant, accept)  # type: ignore[arg-type]


@pytest.mark.parametrize("capability", [ErpCustomers, ErpProjects, ErpReceivables, ErpChangeFeed, ErpPort])
async def test_conformance_erp_has_every_capability(erp: Erp, capability: type) -> None:
    assert isinstance(erp.port, capability)


async def test_conformance_erp_customer_created_is_found_and_kept_once(erp: Erp) -> None:
    reference = f"conformance-{uid()}"
    account = Account(name=f"Conformance {reference}", country="US", tax_number="TAX-1", payment_terms_days=30)

    created = await erp.port.upsert_customer(erp.tenant, account, contact=None, reference=reference,
                                             idempotency_key=f"customer-{reference}")
    again = await erp.port.upsert_customer(erp.tenant, account, contact=None, reference=reference,
                                           idempotency_key=f"customer-{reference}-again")
    found = await erp.port.find_customer(erp.tenant, reference)

    assert created.erp_contact_id and again.erp_contact_id == created.erp_contact_id
    assert found is not None and found.erp_contact_id == created.erp_contact_id
    assert (found.name, found.tax_number, found.payment_terms_days) == (account.name, "TAX-1", 30)
    assert found.created_by == ownership_marker(f"customer-{reference}")
    assert await erp.port.find_customers(erp.tenant, [reference, f"conformance-{uid()}"]) == {
        reference: created.erp_contact_id}
    assert await erp.port.find_customer(erp.tenant, f"conformance-{uid()}") is None


async def test_conformance_erp_batch_of_customers_under_one_key_is_made_once(erp: Erp) -> None:
    drafts = [ErpCustomerDraft(account=Account(name=f"Batch {uid()}"), reference=f"conformance-{uid()}",
                               marker=ownership_marker(f"batch-{n}")) for n in range(2)]
    key = f"batch-{uid()}"

    first = await erp.port.create_customers(erp.tenant, drafts, idempotency_key=key)
    again = await erp.port.create_customers(erp.tenant, drafts, idempotency_key=key)

    assert len(first.contact_ids) == 2 and again.contact_ids == first.contact_ids
    assert await erp.port.find_customers(erp.tenant, [d.reference for d in drafts]) == dict(
        zip([d.reference for d in drafts], first.contact_ids, strict=True))


async def _contact(erp: Erp) -> str:
    reference = f"conformance-{uid()}"
    made = await erp.port.upsert_customer(erp.tenant, Account(name=f"Projects {reference}"), contact=None,
                                          reference=reference, idempotency_key=reference)
    assert made.erp_contact_id
    return made.erp_contact_id


async def test_conformance_erp_project_created_is_read_listed_and_closed(erp: Erp) -> None:
    code = f"P-{uid()}"
    project = Project(code=code, name=f"Conformance {code}", erp_contact_id=await _contact(erp),
                      erp_tenant_id=erp.tenant, budget=Money.of("5000.00", "USD"),
                      tasks=[ProjectTask(name="Build", charge_type=TaskChargeType.FIXED,
                                         rate=Money.of("5000.00", "USD"))])

    created = await erp.port.create_project(erp.tenant, project, idempotency_key=f"project-{code}")
    again = await erp.port.create_project(erp.tenant, project, idempotency_key=f"project-{code}")
    assert created.erp_id
    held = await erp.port.get_project(erp.tenant, created.erp_id)

    assert again.erp_id == created.erp_id and [t.erp_id for t in again.tasks] == [t.erp_id for t in created.tasks]
    assert held.budget == Money.of("5000.00", "USD") and [t.name for t in held.tasks] == ["Build"]
    assert code in {p.code for p in await erp.port.list_projects(erp.tenant)}
    await erp.port.close_project(erp.tenant, created.erp_id)
    assert code not in {p.code for p in await erp.port.list_projects(erp.tenant)}
    assert code in {p.code for p in await erp.port.list_projects(erp.tenant, include_closed=True)}


async def test_conformance_erp_unknown_project_is_not_found(erp: Erp) -> None:
    with pytest.raises(NotFound):
        await erp.port.get_project(erp.tenant, unknown_id())
    with pytest.raises(NotFound):
        await erp.port.accepted_milestones(erp.tenant, unknown_id())


async def test_conformance_erp_milestone_accepted_by_a_person_is_seen_and_only_that_one(erp: Erp) -> None:
    """Nothing is accepted when the project is made; a person accepts MS-DESIGN in the project system: that
    milestone (only) is accepted, and accepting it again changes nothing."""
    code = f"P-{uid()}-US01"
    tasks = [ProjectTask(name=milestone_task_name("MS-DESIGN", "Design phase"), charge_type=TaskChargeType.FIXED,
                         rate=usd("12000.00")),
             ProjectTask(name=milestone_task_name("MS-BUILD", "Build phase"), charge_type=TaskChargeType.FIXED,
                         rate=usd("18000.00")),
             ProjectTask(name=time_task_name("MS-DESIGN"), charge_type=TaskChargeType.TIME, rate=usd("150.00"))]
    created = await erp.port.create_project(erp.tenant, Project(
        code=code, name=f"Conformance {code}", erp_contact_id=await _contact(erp), erp_tenant_id=erp.tenant,
        budget=usd("30000.00"), tasks=tasks), idempotency_key=f"project-{code}")
    assert created.erp_id
    assert await erp.port.accepted_milestones(erp.tenant, created.erp_id) == []
    assert erp.accept is not None

    await erp.accept(code, "MS-DESIGN")
    assert await erp.port.accepted_milestones(erp.tenant, created.erp_id) == ["MS-DESIGN"]
    await erp.accept(code, "MS-DESIGN")
    assert await erp.port.accepted_milestones(erp.tenant, created.erp_id) == ["MS-DESIGN"]


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


async def test_conformance_erp_receivables_posted_once_per_billing_document(erp: Erp) -> None:
    contact = await _contact(erp)
    billed = fake_invoice(f"in_{uid()}")

    posted = await erp.port.post_invoice(erp.tenant, billed, erp_contact_id=contact,
                                         idempotency_key=f"post-{billed.billing_id}")
    again = await erp.port.post_invoice(erp.tenant, billed, erp_contact_id=contact,
                                        idempotency_key=f"post-{billed.billing_id}-again")
    payment = Payment(billing_id=f"ch_{uid()}", invoice_billing_id=billed.billing_id, amount=usd("40.00"),
                      paid_at=datetime(2027, 1, 5, tzinfo=UTC))
    paid = await erp.port.record_payment(erp.tenant, posted, payment, idempotency_key=f"pay-{payment.billing_id}")
    paid_again = await erp.port.record_payment(erp.tenant, posted, payment,
                                               idempotency_key=f"pay-{payment.billing_id}-again")

    assert again == posted and paid_again == paid
    listed = [i for i in await erp.port.list_invoices(erp.tenant) if i.billing_id == billed.billing_id]
    assert [i.metadata.get("erp_invoice_id") for i in listed] == [posted]
    assert listed[0].total == usd("100.00")


async def test_conformance_erp_credit_note_reversed_gives_the_amount_back_to_the_invoice(erp: Erp) -> None:
    """A closing credit taken back (cash came after a write-off): unallocated and voided, once however often
    asked; the invoice owes its whole total again, so the payment of it is taken."""
    contact = await _contact(erp)
    billed = fake_invoice(f"in_{uid()}")
    posted = await erp.port.post_invoice(erp.tenant, billed, erp_contact_id=contact, idempotency_key=f"p-{uid()}")
    write_off = CreditNote(billing_id=f"{billed.billing_id}-uncollectible", invoice_billing_id=billed.billing_id,
                           amount=usd("100.00"), reason="Written off")
    await erp.port.post_credit_note(erp.tenant, write_off, erp_contact_id=contact, idempotency_key=f"c-{uid()}")
    never_posted = write_off.model_copy(update={"billing_id": f"{billed.billing_id}-never"})

    key = f"r-{uid()}"
    await erp.port.reverse_credit_note(erp.tenant, write_off, idempotency_key=key)
    await erp.port.reverse_credit_note(erp.tenant, write_off, idempotency_key=key)
    await erp.port.reverse_credit_note(erp.tenant, never_posted, idempotency_key=f"r-{uid()}")
    payment = Payment(billing_id=f"ch_{uid()}", invoice_billing_id=billed.billing_id, amount=usd("100.00"),
                      paid_at=datetime(2027, 1, 5, tzinfo=UTC))
    await erp.port.record_payment(erp.tenant, posted, payment, idempotency_key=f"pay-{payment.billing_id}")

    feed: ErpChangeFeed = erp.port  # type: ignore[assignment]
    notes = [n for n in await _all(lambda c: feed.credit_notes_page(erp.tenant, c))
             if n.reference == write_off.billing_id]
    assert [(n.status, n.erp_invoice_ids) for n in notes] == [("VOIDED", [])]


async def test_conformance_erp_unknown_invoice_cannot_be_voided(erp: Erp) -> None:
    with pytest.raises(NotFound):
        await erp.port.void_invoice(erp.tenant, unknown_id(), idempotency_key=f"void-{uid()}")


async def _all(read: Callable[[str | None], Awaitable[tuple[list[Any], str | None]]]) -> list[Any]:
    found: list[Any] = []
    cursor: str | None = None
    while True:
        items, cursor = await read(cursor)
        assert cursor is None or isinstance(cursor, str)
        found += items
        if cursor is None:
            return found


async def test_conformance_erp_change_feed_pages_through_everything_by_opaque_cursor(erp: Erp) -> None:
    feed: ErpChangeFeed = erp.port  # type: ignore[assignment]
    contact = await _contact(erp)
    billed = fake_invoice(f"in_{uid()}")
    posted = await erp.port.post_invoice(erp.tenant, billed, erp_contact_id=contact,
                                         idempotency_key=f"post-{billed.billing_id}")
    payment = Payment(billing_id=f"ch_{uid()}", invoice_billing_id=billed.billing_id, amount=usd("100.00"),
                      paid_at=datetime(2027, 1, 5, tzinfo=UTC))
    paid = await erp.port.record_payment(erp.tenant, posted, payment, idempotency_key=f"pay-{payment.billing_id}")

    invoices = await _all(lambda c: feed.invoices_page(erp.tenant, c))
    payments = await _all(lambda c: feed.payments_page(erp.tenant, c))

    assert [i.metadata.get("erp_invoice_id") for i in invoices if i.billing_id == billed.billing_id] == [posted]
    assert [(p.erp_id, p.erp_invoice_id) for p in payments if p.reference == payment.billing_id] == [(paid, posted)]
