"""NetSuiteErp against the NetSuite emulator over real HTTP: every port method, upserts by external ID, partial
payments applied with ``apply.items``, credit memos, voids, the SuiteQL feeds, and NetSuite's errors in the
connector error tree."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from canonical import (
    Account,
    Address,
    Contact,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    Payment,
    Project,
    ProjectTask,
    TaskChargeType,
    TaxLine,
    TimeEntry,
)
from canonical.backfill import ErpCustomerDraft
from connectors.errors import AuthFailed, NotFound, RateLimited, Rejected, Unavailable
from connectors.netsuite import NetSuiteErp, from_settings
from connectors.netsuite.tba import TbaAuth
from connectors.ports import ErpChangeFeed, ErpPort
from settings import Settings
from tests.helpers.failures import assert_reaches_temporal
from tests.helpers.servers import SandboxHandle, vendor_settings, with_vendor

TENANT = "1"  # the emulator's parent subsidiary (USD)


def uid() -> str:
    return uuid.uuid4().hex[:10]


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


@pytest_asyncio.fixture
async def erp(settings: Settings, netsuite_sandbox: SandboxHandle) -> AsyncIterator[NetSuiteErp]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


def stored(sandbox: SandboxHandle, kind: str, **match: Any) -> list[dict[str, Any]]:
    return sandbox.store.list(kind, where=lambda d: all(d.get(k) == v for k, v in match.items()))


async def new_customer(erp: NetSuiteErp) -> str:
    ref = f"hubspot-company-{uid()}-US01"
    made = await erp.upsert_customer(TENANT, Account(name=f"Acme {ref}"), contact=None, reference=ref,
                                     idempotency_key=f"k-{ref}")
    assert made.erp_contact_id
    return made.erp_contact_id


def invoice(billing_id: str, *, amount: str = "100.00", tax: str = "0") -> Invoice:
    net, tax_amount = Decimal(amount), Decimal(tax)
    taxes = [TaxLine(name="Sales tax", rate_percent=Decimal(10), amount=usd(tax))] if tax_amount else []
    line = InvoiceLine(description="Implementation", quantity=Decimal(2), unit_amount=usd(str(net / 2)),
                       amount=usd(amount), taxes=taxes)
    return Invoice(billing_id=billing_id, number=f"BILL-{billing_id}", customer_id="cus_1", currency="USD",
                   status=InvoiceStatus.OPEN, issued_on=date(2024, 5, 1), due_on=date(2024, 5, 31), lines=[line],
                   subtotal=usd(amount), tax=usd(tax), total=usd(str(net + tax_amount)), amount_paid=usd("0"),
                   amount_due=usd(str(net + tax_amount)))


def payment(billing_invoice: str, amount: str) -> Payment:
    return Payment(billing_id=f"ch_{uid()}", invoice_billing_id=billing_invoice, amount=usd(amount),
                   paid_at=datetime(2024, 5, 10, 12, tzinfo=UTC))


async def every(read: Callable[[str | None], Awaitable[tuple[list[Any], str | None]]]) -> list[Any]:
    found: list[Any] = []
    cursor: str | None = None
    for _ in range(1000):
        items, cursor = await read(cursor)
        found += items
        if cursor is None:
            break
    return found


def test_netsuite_erp_implements_the_port_and_the_feed(settings: Settings) -> None:
    adapter = from_settings(settings)
    assert isinstance(adapter, ErpPort) and isinstance(adapter, ErpChangeFeed)


async def test_netsuite_upsert_customer_by_external_id_writes_erp_fields(
        erp: NetSuiteErp, netsuite_sandbox: SandboxHandle) -> None:
    ref = f"hubspot-company-{uid()}-US01"
    account = Account(name=f"Globex {ref}", tax_number="US-99", payment_terms_days=30,
                      address=Address(line1="1 Market St", city="San Francisco", region="CA", postal_code="94105",
                                      country="US"))
    person = Contact(first_name="Ada", last_name="Lovelace", email=f"{uid()}@example.com", role="billing")
    made = await erp.upsert_customer(TENANT, account, contact=person, reference=ref, idempotency_key=f"k-{ref}")

    [doc] = stored(netsuite_sandbox, "customer", externalId=ref)
    assert made.erp_contact_id == doc["id"] and doc["subsidiary"]["id"] == TENANT
    assert (doc["email"], doc["vatRegNumber"], doc["terms"]["id"]) == (person.email, "US-99", "2")
    assert doc["addressBook"]["items"][0]["addressBookAddress"]["city"] == "San Francisco"
    assert (made.tax_number, made.payment_terms_days) == ("US-99", 30)
    assert (await erp.find_customer(TENANT, ref)) is not None


async def test_netsuite_upsert_customer_twice_concurrently_is_one_record(
        erp: NetSuiteErp, netsuite_sandbox: SandboxHandle) -> None:
    ref = f"hubspot-company-{uid()}-US01"
    first, second = await asyncio.gather(*(
        erp.upsert_customer(TENANT, Account(name=f"Initech {ref}"), contact=None, reference=ref,
                            idempotency_key=f"k-{ref}") for _ in range(2)))
    assert first.erp_contact_id == second.erp_contact_id
    assert len(stored(netsuite_sandbox, "customer", externalId=ref)) == 1


async def test_netsuite_archived_customer_is_made_active_again(erp: NetSuiteErp,
                                                               netsuite_sandbox: SandboxHandle) -> None:
    ref = f"hubspot-company-{uid()}-US01"
    made = await erp.upsert_customer(TENANT, Account(name="Gone Co"), contact=None, reference=ref,
                                     idempotency_key=f"k-{ref}")
    assert made.erp_contact_id
    await erp.archive_customer(TENANT, made.erp_contact_id)
    assert stored(netsuite_sandbox, "customer", externalId=ref)[0]["isInactive"] is True
    await erp.upsert_customer(TENANT, Account(name="Gone Co"), contact=None, reference=ref,
                              idempotency_key=f"k2-{ref}")
    assert stored(netsuite_sandbox, "customer", externalId=ref)[0]["isInactive"] is False


async def test_netsuite_customers_in_one_subsidiary_are_not_found_in_another(erp: NetSuiteErp,
                                                                             settings: Settings) -> None:
    ref = f"hubspot-company-{uid()}-US01"
    await erp.upsert_customer(TENANT, Account(name="Local"), contact=None, reference=ref, idempotency_key=ref)
    other = settings.entity("EU01").erp_tenant_id
    assert await erp.find_customer(other, ref) is None
    assert await erp.find_customers(other, [ref]) == {}
    assert set(await erp.find_customers(TENANT, [ref, f"none-{uid()}"])) == {ref}


async def test_netsuite_create_customers_twice_makes_each_once(erp: NetSuiteErp) -> None:
    drafts = [ErpCustomerDraft(account=Account(name=f"Batch {uid()}"), reference=f"ref-{uid()}") for _ in range(3)]
    first = await erp.create_customers(TENANT, drafts, idempotency_key="k")
    again = await erp.create_customers(TENANT, drafts, idempotency_key="k")
    assert first.created == 3 and again.created == 0 and first.contact_ids == again.contact_ids


async def test_netsuite_project_with_tasks_and_budget_created_once_and_updated(
        erp: NetSuiteErp, netsuite_sandbox: SandboxHandle) -> None:
    customer = await new_customer(erp)
    code = f"P-{uid()}-US01"
    project = Project(code=code, name="Delivery", erp_contact_id=customer, erp_tenant_id=TENANT,
                      budget=usd("9000.00"), deadline=date(2027, 6, 30),
                      tasks=[ProjectTask(name="Build", charge_type=TaskChargeType.TIME, rate=usd("150.00"),
                                         estimate_minutes=600),
                             ProjectTask(name="Go-live", charge_type=TaskChargeType.FIXED, rate=usd("2000.00"))])
    made = await erp.create_project(TENANT, project, idempotency_key=f"k-{code}")
    again = await erp.create_project(TENANT, project, idempotency_key=f"k-{code}")
    assert made.erp_id == again.erp_id and [t.erp_id for t in made.tasks] == [t.erp_id for t in again.tasks]
    [job] = stored(netsuite_sandbox, "job", externalId=code)
    assert (job["jobPrice"], job["parent"]["id"], job["projectedEndDate"]) == ("9000.00", customer, "2027-06-30")

    held = await erp.get_project(TENANT, made.erp_id or "")
    assert held.budget == usd("9000.00") and {t.name: t.estimate_minutes for t in held.tasks} == {
        "Build": 600, "Go-live": None}
    bigger = held.model_copy(update={"budget": usd("12000.00"), "tasks": [
        *held.tasks, ProjectTask(name="Support", charge_type=TaskChargeType.TIME, rate=usd("100.00"))]})
    updated = await erp.update_project(TENANT, bigger, idempotency_key=f"u-{code}")
    assert updated.budget == usd("12000.00") and {t.name for t in updated.tasks} == {"Build", "Go-live", "Support"}

    entry = TimeEntry(task_erp_id=made.tasks[0].erp_id or "", user_id="7", minutes=95, date=date(2027, 1, 4))
    booked = await erp.add_time_entry(TENANT, made.erp_id or "", entry, idempotency_key=f"t-{code}")
    again = await erp.add_time_entry(TENANT, made.erp_id or "", entry, idempotency_key=f"t-{code}")
    [bill] = stored(netsuite_sandbox, "timeBill", customer={"id": made.erp_id})
    assert booked.erp_id == again.erp_id == bill["id"] and bill["hours"] == "1.58"
    assert bill["caseTaskEvent"] == {"id": made.tasks[0].erp_id}

    await erp.close_project(TENANT, made.erp_id or "")
    assert code not in {p.code for p in await erp.list_projects(TENANT)}
    assert code in {p.code for p in await erp.list_projects(TENANT, include_closed=True)}


async def test_netsuite_partial_payments_apply_and_invoice_shows_remaining(
        erp: NetSuiteErp, netsuite_sandbox: SandboxHandle) -> None:
    customer = await new_customer(erp)
    billing_id = f"in_{uid()}"
    posted = await erp.post_invoice(TENANT, invoice(billing_id, amount="100.00", tax="10.00"), erp_contact_id=customer,
                                    idempotency_key=f"k-{billing_id}")
    assert await erp.post_invoice(TENANT, invoice(billing_id), erp_contact_id=customer, idempotency_key="k2") == posted

    first = payment(billing_id, "40.00")
    paid = await erp.record_payment(TENANT, posted, first, idempotency_key=f"p-{first.billing_id}")
    assert await erp.record_payment(TENANT, posted, first, idempotency_key=f"p-{first.billing_id}") == paid
    [doc] = stored(netsuite_sandbox, "customerPayment", externalId=first.billing_id)
    assert doc["apply"]["items"] == [{"doc": {"id": posted}, "apply": True, "amount": "40.00"}]

    [read] = [i for i in await erp.list_invoices(TENANT) if i.billing_id == billing_id]
    assert (read.total, read.tax, read.amount_paid, read.amount_due) == (usd("110.00"), usd("10.00"), usd("40.00"),
                                                                        usd("70.00"))
    assert read.status is InvoiceStatus.OPEN and read.metadata["erp_status"] == "AUTHORISED"

    rest = payment(billing_id, "70.00")
    await erp.record_payment(TENANT, posted, rest, idempotency_key=f"p-{rest.billing_id}")
    [read] = [i for i in await erp.list_invoices(TENANT) if i.billing_id == billing_id]
    assert read.status is InvoiceStatus.PAID and read.amount_due == usd("0.00")
    payments = await every(lambda c: erp.payments_page(TENANT, c))
    assert {(p.reference, p.erp_invoice_id, p.amount) for p in payments if p.erp_invoice_id == posted} == {
        (first.billing_id, posted, usd("40.00")), (rest.billing_id, posted, usd("70.00"))}


async def test_netsuite_overpayment_is_rejected_with_netsuites_detail(erp: NetSuiteErp) -> None:
    customer = await new_customer(erp)
    billing_id = f"in_{uid()}"
    posted = await erp.post_invoice(TENANT, invoice(billing_id, amount="10.00"), erp_contact_id=customer,
                                    idempotency_key="k")
    with pytest.raises(Rejected, match="USER_ERROR: .*exceeds its amount remaining"):
        await erp.record_payment(TENANT, posted, payment(billing_id, "10.01"), idempotency_key="p")


async def test_netsuite_credit_memo_applied_then_reversed(erp: NetSuiteErp) -> None:
    customer = await new_customer(erp)
    billing_id = f"in_{uid()}"
    posted = await erp.post_invoice(TENANT, invoice(billing_id, amount="100.00"), erp_contact_id=customer,
                                    idempotency_key="k")
    note = CreditNote(billing_id=f"cn_{uid()}", invoice_billing_id=billing_id, amount=usd("30.00"),
                      issued_at=datetime(2024, 5, 2, tzinfo=UTC), before_payment=True)
    memo = await erp.post_credit_note(TENANT, note, erp_contact_id=customer, idempotency_key="c")
    assert await erp.post_credit_note(TENANT, note, erp_contact_id=customer, idempotency_key="c") == memo
    [read] = [i for i in await erp.list_invoices(TENANT) if i.billing_id == billing_id]
    assert read.amount_due == usd("70.00") and read.metadata["erp_amount_credited"] == "30.00"
    notes = [n for n in await every(lambda c: erp.credit_notes_page(TENANT, c)) if n.reference == note.billing_id]
    assert [(n.erp_id, n.status, n.erp_invoice_ids) for n in notes] == [(memo, "AUTHORISED", [posted])]

    await erp.reverse_credit_note(TENANT, note, idempotency_key="r")
    await erp.reverse_credit_note(TENANT, note, idempotency_key="r")
    [read] = [i for i in await erp.list_invoices(TENANT) if i.billing_id == billing_id]
    assert read.amount_due == usd("100.00")
    notes = [n for n in await every(lambda c: erp.credit_notes_page(TENANT, c)) if n.reference == note.billing_id]
    assert [(n.status, n.erp_invoice_ids) for n in notes] == [("VOIDED", [])]


async def test_netsuite_void_gives_the_external_id_up_for_a_corrected_invoice(erp: NetSuiteErp) -> None:
    customer = await new_customer(erp)
    billing_id = f"in_{uid()}"
    first = await erp.post_invoice(TENANT, invoice(billing_id, amount="10.00"), erp_contact_id=customer,
                                   idempotency_key="k")
    await erp.void_invoice(TENANT, first, idempotency_key="v")
    await erp.void_invoice(TENANT, first, idempotency_key="v")
    second = await erp.post_invoice(TENANT, invoice(billing_id, amount="12.00"), erp_contact_id=customer,
                                    idempotency_key="k2")
    assert second != first
    docs = {i.metadata["erp_invoice_id"]: i for i in await erp.list_invoices(TENANT) if i.billing_id == billing_id}
    assert docs[first].status is InvoiceStatus.VOID and docs[first].metadata["erp_status"] == "VOIDED"
    assert docs[second].total == usd("12.00") and docs[second].status is InvoiceStatus.OPEN


async def test_netsuite_void_with_a_payment_applied_is_rejected(erp: NetSuiteErp) -> None:
    customer = await new_customer(erp)
    billing_id = f"in_{uid()}"
    posted = await erp.post_invoice(TENANT, invoice(billing_id, amount="20.00"), erp_contact_id=customer,
                                    idempotency_key="k")
    await erp.record_payment(TENANT, posted, payment(billing_id, "5.00"), idempotency_key="p")
    with pytest.raises(Rejected, match="payment or credit note"):
        await erp.void_invoice(TENANT, posted, idempotency_key="v")


async def test_netsuite_feed_delta_reads_only_what_changed_since(erp: NetSuiteErp) -> None:
    customer = await new_customer(erp)
    old = f"in_{uid()}"
    await erp.post_invoice(TENANT, invoice(old), erp_contact_id=customer, idempotency_key="k1")
    await asyncio.sleep(1.1)  # lastModifiedDate is compared to the second (TO_DATE)
    since = datetime.now(UTC)
    new = f"in_{uid()}"
    await erp.post_invoice(TENANT, invoice(new), erp_contact_id=customer, idempotency_key="k2")
    changed = {i.billing_id for i in await every(lambda c: erp.invoices_page(TENANT, c, modified_since=since))}
    assert new in changed and old not in changed


async def test_netsuite_feed_pages_by_offset_cursor(settings: Settings, erp: NetSuiteErp) -> None:
    customer = await new_customer(erp)
    since = datetime.now(UTC) - timedelta(seconds=1)
    made = {await erp.post_invoice(TENANT, invoice(f"in_{uid()}"), erp_contact_id=customer, idempotency_key=uid())
            for _ in range(5)}
    small = from_settings(settings, page_size=2)
    try:
        first, cursor = await small.invoices_page(TENANT, modified_since=since)
        assert len(first) == 2 and cursor == "2"
        pages = [first]
        while cursor is not None:
            page, cursor = await small.invoices_page(TENANT, cursor, modified_since=since)
            assert len(page) <= 2
            pages.append(page)
    finally:
        await small.aclose()
    ids = [i.metadata["erp_invoice_id"] for page in pages for i in page]
    assert len(pages) >= 3 and len(ids) == len(set(ids)) and set(ids) >= made


async def test_netsuite_unknown_ids_are_not_found(erp: NetSuiteErp) -> None:
    with pytest.raises(NotFound):
        await erp.get_project(TENANT, "99999999")
    with pytest.raises(NotFound):
        await erp.get_project(TENANT, str(uuid.uuid4()))
    with pytest.raises(NotFound):
        await erp.void_invoice(TENANT, "99999999", idempotency_key="v")


async def test_netsuite_wrong_token_secret_is_auth_failed(settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    adapter = from_settings(with_vendor(settings, "netsuite", token_secret="not-the-secret"))
    try:
        with pytest.raises(AuthFailed, match="INVALID_LOGIN"):
            await adapter.find_customer(TENANT, "anything")
    finally:
        await adapter.aclose()


async def test_netsuite_concurrency_limit_is_rate_limited_with_netsuites_code(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    # an adapter allowed more requests in flight than the account: NetSuite's 429 becomes RateLimited
    adapter = from_settings(with_vendor(settings, "netsuite", concurrency=20, requests_per_second=1000))
    try:
        with netsuite_sandbox.faults(latency_ms=300):
            results = await asyncio.gather(*(adapter.find_customer(TENANT, f"x-{i}") for i in range(12)),
                                           return_exceptions=True)
    finally:
        await adapter.aclose()
    limited = [r for r in results if isinstance(r, RateLimited)]
    assert limited and all("CONCURRENCY_LIMIT_EXCEEDED" in r.message and r.retry_after == 1.0 for r in limited)
    failure = assert_reaches_temporal(limited[0], "RateLimited")  # NetSuite's Retry-After reaches the server
    assert failure.application_failure_info.next_retry_delay.ToTimedelta() == timedelta(seconds=1)


async def test_netsuite_outage_reaches_temporal_as_a_retryable_failure(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    # (a timeout takes the same path; a hung request would hold one of the account's slots into the next test)
    adapter = from_settings(settings)
    try:
        with netsuite_sandbox.faults(error_rate=1.0, status=503), pytest.raises(Unavailable) as raised:
            await adapter.find_customer(TENANT, "anything")
    finally:
        await adapter.aclose()
    failure = assert_reaches_temporal(raised.value, "Unavailable")
    assert not failure.application_failure_info.non_retryable


async def test_netsuite_adapter_stays_under_the_account_concurrency(settings: Settings,
                                                                    netsuite_sandbox: SandboxHandle) -> None:
    adapter = from_settings(with_vendor(settings, "netsuite", requests_per_second=1000))
    try:
        with netsuite_sandbox.faults(latency_ms=200):
            found = await asyncio.gather(*(adapter.find_customer(TENANT, f"y-{i}") for i in range(12)))
    finally:
        await adapter.aclose()
    assert found == [None] * 12


def test_netsuite_replayed_request_is_refused(settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    config = vendor_settings(settings, "netsuite")
    auth = TbaAuth(account_id=config.account_id, consumer_key=config.consumer_key,
                   consumer_secret=config.consumer_secret, token_id=config.token_id, token_secret=config.token_secret)
    url = f"{netsuite_sandbox.base_url}/services/rest/record/v1/subsidiary/1"
    header = auth.header_for("GET", url)
    first = httpx.get(url, headers={"Authorization": header})
    again = httpx.get(url, headers={"Authorization": header})
    assert first.status_code == 200 and first.json()["id"] == "1"
    assert again.status_code == 401
    assert again.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
    assert "replayed nonce" in again.json()["o:errorDetails"][0]["detail"]


async def test_netsuite_reference_netsuite_cannot_hold_is_rejected_before_any_request(
        erp: NetSuiteErp, netsuite_sandbox: SandboxHandle) -> None:
    before = netsuite_sandbox.control.stats.requests
    with pytest.raises(Rejected, match="external ID"):
        await erp.upsert_customer(TENANT, Account(name="Colon Co"), contact=None, reference="hubspot:company:1",
                                  idempotency_key="k")
    assert netsuite_sandbox.control.stats.requests == before


async def test_netsuite_acts_a_hand_recorded_payment_and_budget_edit_are_read_back(
        settings: Settings, erp: NetSuiteErp) -> None:
    from connectors.acts import acts_for
    from connectors.registry import default_registry

    customer = await new_customer(erp)
    billing_id = f"in_{uid()}"
    posted = await erp.post_invoice(TENANT, invoice(billing_id, amount="60.00"), erp_contact_id=customer,
                                    idempotency_key="k")
    code = f"P-{uid()}-US01"
    project = await erp.create_project(TENANT, Project(code=code, name="Hand", erp_contact_id=customer,
                                                       erp_tenant_id=TENANT, budget=usd("100.00")),
                                       idempotency_key=code)
    spec = next(s for s in default_registry(settings).all() if s.name == "netsuite")
    async with httpx.AsyncClient(timeout=10) as http:
        acts = acts_for(spec, settings, http)
        await acts.record_payment(posted, Decimal("25.00"))
        await acts.edit_project_budget(project.erp_id, Decimal("250.00"))

    by_hand = [p for p in await every(lambda c: erp.payments_page(TENANT, c)) if p.erp_invoice_id == posted]
    assert [(p.reference, p.amount) for p in by_hand] == [("", usd("25.00"))]
    [read] = [i for i in await erp.list_invoices(TENANT) if i.billing_id == billing_id]
    assert read.amount_due == usd("35.00")
    assert (await erp.get_project(TENANT, project.erp_id or "")).budget == usd("250.00")


async def test_netsuite_subsidiary_and_currency_look_ups(erp: NetSuiteErp, settings: Settings) -> None:
    eu = await erp.get_subsidiary(settings.entity("EU01").erp_tenant_id)
    currencies = await erp.currencies()
    assert currencies == {"1": "USD", "2": "GBP", "3": "CAD", "4": "EUR"}
    assert currencies[eu["currency"]["id"]] == "EUR" and eu["name"] == settings.entity("EU01").name
    with pytest.raises(NotFound):
        await erp.get_subsidiary("999")


async def test_netsuite_entity_subsidiary_books_in_its_currency(erp: NetSuiteErp, settings: Settings,
                                                                netsuite_sandbox: SandboxHandle) -> None:
    eu01 = settings.entity("EU01").erp_tenant_id
    ref = f"hubspot-company-{uid()}-EU01"
    customer = await erp.upsert_customer(eu01, Account(name="Euro GmbH"), contact=None, reference=ref,
                                         idempotency_key=ref)
    [doc] = stored(netsuite_sandbox, "customer", externalId=ref)
    assert (doc["subsidiary"]["id"], doc["currency"]["id"]) == (eu01, "4")
    euro = invoice(f"in_{uid()}").model_copy(update={"currency": "EUR"})
    euro = euro.model_copy(update={"lines": [ln.model_copy(update={"amount": Money.of("100.00", "EUR"),
                                                                   "unit_amount": Money.of("50.00", "EUR")})
                                             for ln in euro.lines],
                                   "tax": Money.of("0", "EUR"), "total": Money.of("100.00", "EUR")})
    await erp.post_invoice(eu01, euro, erp_contact_id=customer.erp_contact_id or "", idempotency_key="k")
    [read] = [i for i in await erp.list_invoices(eu01) if i.billing_id == euro.billing_id]
    assert (read.currency, read.total, read.legal_entity) == ("EUR", Money.of("100.00", "EUR"), "EU01")
    assert euro.billing_id not in {i.billing_id for i in await erp.list_invoices(TENANT)}


def test_netsuite_bare_internal_id_is_found_under_the_names_the_flows_write(settings: Settings) -> None:
    from connectors.registry import default_registry

    entities = [e.model_copy(update={"erp_adapter": "netsuite"}) if e.code == "US01" else e
                for e in settings.legal_entities]
    configured = settings.model_copy(update={"legal_entities": entities})
    registry = default_registry(configured)
    erp = registry.systems(configured).erp["US01"]
    written = {erp.ref(kind, "4711") for kind in ("contact", "project", "invoice")}  # what workflows put in keys
    assert written <= set(registry.candidate_refs(configured, "4711"))
