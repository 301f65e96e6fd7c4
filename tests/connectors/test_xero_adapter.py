"""XeroErp against the Xero emulator over real HTTP: every port method, idempotency, the ownership
rule on contacts, paging, and the translation of Xero's errors into the connector error tree."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
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
from canonical.books import TaxRule, TaxStatus
from connectors.errors import AuthFailed, RateLimited, Rejected, Unavailable
from connectors.ports import ErpPort
from connectors.xero import XeroErp, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings, with_vendor


def _xero(settings: Settings) -> Any:
    return vendor_settings(settings, "xero")


def uid() -> str:
    return uuid.uuid4().hex[:10]


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


@pytest.fixture
def tenant(settings: Settings) -> str:
    return settings.entity("US01").erp_tenant_id


@pytest_asyncio.fixture
async def erp(settings: Settings, xero_sandbox: SandboxHandle) -> AsyncIterator[XeroErp]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


def account(name: str, **update: Any) -> Account:
    return Account(name=name, crm_id=uid(), country="US",
                   address=Address(line1="1 Market St", city="San Francisco", region="CA", postal_code="94105",
                                   country="US"), **update)


def billing_contact() -> Contact:
    return Contact(first_name="Ada", last_name="Lovelace", email=f"{uid()}@example.com", role="billing")


async def new_contact(erp: XeroErp, tenant: str) -> Account:
    ref = f"hubspot:company:{uid()}"
    return await erp.upsert_customer(tenant, account(f"Acme {ref}", payment_terms_days=30), contact=billing_contact(),
                                     reference=ref, idempotency_key=f"cust-{ref}")


def invoice(billing_id: str, *, amount: str = "100.00", tax: str = "0") -> Invoice:
    net, tax_amount = Decimal(amount), Decimal(tax)
    taxes = [TaxLine(name="Sales tax", rate_percent=Decimal(10), amount=usd(tax))] if tax_amount else []
    line = InvoiceLine(description="Implementation", quantity=Decimal(2), unit_amount=usd(str(net / 2)),
                       amount=usd(amount), taxes=taxes)
    return Invoice(billing_id=billing_id, number=f"BILL-{billing_id}", customer_id="cus_1", currency="USD",
                   status=InvoiceStatus.OPEN, issued_on=date(2024, 5, 1), due_on=date(2024, 5, 31), lines=[line],
                   subtotal=usd(amount), tax=usd(tax), total=usd(str(net + tax_amount)), amount_paid=usd("0"),
                   amount_due=usd(str(net + tax_amount)))


def stored(sandbox: SandboxHandle, kind: str, tenant: str, **match: Any) -> list[dict[str, Any]]:
    return sandbox.store.list(kind, tenant=tenant, where=lambda d: all(d.get(k) == v for k, v in match.items()))


# -- the port -------------------------------------------------------------------------------------
def test_xero_erp_implements_the_port(settings: Settings) -> None:
    assert isinstance(from_settings(settings), ErpPort)


async def test_upsert_customer_creates_contact_with_erp_fields(erp: XeroErp, tenant: str,
                                                               xero_sandbox: SandboxHandle) -> None:
    ref = f"hubspot:company:{uid()}"
    person = billing_contact()
    result = await erp.upsert_customer(tenant, account(f"Globex {ref}", tax_number="US-99", payment_terms_days=14),
                                       contact=person, reference=ref, idempotency_key=f"k-{ref}")
    [doc] = stored(xero_sandbox, "contact", tenant, ContactNumber=ref)
    assert result.erp_contact_id == doc["ContactID"]
    assert (result.tax_number, result.payment_terms_days) == ("US-99", 14)
    assert doc["EmailAddress"] == person.email and doc["FirstName"] == "Ada"
    assert doc["PaymentTerms"]["Sales"] == {"Day": 14, "Type": "DAYSAFTERBILLDATE"}
    assert doc["Addresses"][0]["AddressType"] == "POBOX" and doc["Addresses"][0]["City"] == "San Francisco"


async def test_upsert_customer_same_key_concurrently_creates_one_contact(erp: XeroErp, tenant: str,
                                                                         xero_sandbox: SandboxHandle) -> None:
    # Both calls miss the look-up; the Idempotency-Key makes Xero answer the second with the first's result.
    ref = f"hubspot:company:{uid()}"
    first, second = await asyncio.gather(*(
        erp.upsert_customer(tenant, account(f"Initech {ref}"), contact=None, reference=ref,
                            idempotency_key=f"k-{ref}") for _ in range(2)))
    assert first.erp_contact_id == second.erp_contact_id
    assert len(stored(xero_sandbox, "contact", tenant, ContactNumber=ref)) == 1


async def test_upsert_customer_twice_finds_the_contact_by_reference(erp: XeroErp, tenant: str,
                                                                    xero_sandbox: SandboxHandle) -> None:
    ref = f"hubspot:company:{uid()}"
    first = await erp.upsert_customer(tenant, account(f"Umbrella {ref}"), contact=None, reference=ref,
                                      idempotency_key=f"a-{ref}")
    again = await erp.upsert_customer(tenant, account(f"Umbrella {ref}"), contact=None, reference=ref,
                                      idempotency_key=f"b-{ref}")
    assert again.erp_contact_id == first.erp_contact_id
    assert len(stored(xero_sandbox, "contact", tenant, ContactNumber=ref)) == 1
    found = await erp.find_customer(tenant, ref)
    assert found is not None and found.erp_contact_id == first.erp_contact_id
    assert await erp.find_customer(tenant, f"hubspot:company:{uid()}") is None


async def test_upsert_customer_leaves_fields_not_given_as_xero_holds_them(erp: XeroErp, tenant: str,
                                                                          xero_sandbox: SandboxHandle) -> None:
    # the ownership guard is the activity layer's (tests/activities/test_erp_ownership.py): it leaves an
    # ERP-owned field out, and the adapter must then leave Xero's value alone
    ref = f"hubspot:company:{uid()}"
    seeded = xero_sandbox.post_control("contacts", {
        "tenantId": tenant, "Name": f"Old name {ref}", "ContactNumber": ref, "TaxNumber": "ERP-TAX-1",
        "PaymentTermsDays": 45}).json()
    result = await erp.upsert_customer(tenant, account(f"New name {ref}", tax_number=None, payment_terms_days=None),
                                       contact=billing_contact(), reference=ref, idempotency_key=f"k-{ref}")
    doc = xero_sandbox.store.get("contact", seeded["ContactID"], tenant=tenant)
    assert doc is not None
    assert (doc["TaxNumber"], doc["PaymentTerms"]["Sales"]["Day"]) == ("ERP-TAX-1", 45)  # untouched in Xero
    assert doc["Name"] == f"New name {ref}"  # the CRM owns the name
    assert (result.tax_number, result.payment_terms_days) == ("ERP-TAX-1", 45)  # the ERP's values come back
    assert result.erp_contact_id == seeded["ContactID"]


async def test_upsert_customer_fills_an_empty_erp_owned_field(erp: XeroErp, tenant: str,
                                                              xero_sandbox: SandboxHandle) -> None:
    ref = f"hubspot:company:{uid()}"
    seeded = xero_sandbox.post_control("contacts", {"tenantId": tenant, "Name": f"Bare {ref}",
                                                    "ContactNumber": ref}).json()
    result = await erp.upsert_customer(tenant, account(f"Bare {ref}", tax_number="CRM-TAX-2"), contact=None,
                                       reference=ref, idempotency_key=f"k-{ref}")
    assert result.tax_number == "CRM-TAX-2"
    assert xero_sandbox.store.get("contact", seeded["ContactID"], tenant=tenant)["TaxNumber"] == "CRM-TAX-2"


async def test_upsert_customer_name_clash_is_rejected_with_xeros_message(erp: XeroErp, tenant: str,
                                                                         xero_sandbox: SandboxHandle) -> None:
    name = f"Taken {uid()}"
    xero_sandbox.post_control("contacts", {"tenantId": tenant, "Name": name})
    with pytest.raises(Rejected) as caught:
        await erp.upsert_customer(tenant, account(name), contact=None, reference=f"hubspot:company:{uid()}",
                                  idempotency_key=uid())
    assert "already assigned to another contact" in caught.value.message
    assert caught.value.status == 400


async def test_archive_customer_archives_and_upsert_reactivates(erp: XeroErp, tenant: str,
                                                                xero_sandbox: SandboxHandle) -> None:
    created = await new_contact(erp, tenant)
    assert created.erp_contact_id is not None
    await erp.archive_customer(tenant, created.erp_contact_id)
    assert xero_sandbox.store.get("contact", created.erp_contact_id, tenant=tenant)["ContactStatus"] == "ARCHIVED"
    await erp.archive_customer(tenant, created.erp_contact_id)  # twice is harmless
    ref = xero_sandbox.store.get("contact", created.erp_contact_id, tenant=tenant)["ContactNumber"]
    again = await erp.upsert_customer(tenant, created, contact=None, reference=ref, idempotency_key=uid())
    assert again.erp_contact_id == created.erp_contact_id
    assert xero_sandbox.store.get("contact", created.erp_contact_id, tenant=tenant)["ContactStatus"] == "ACTIVE"


def project_for(contact_id: str, tenant: str, *tasks: ProjectTask) -> Project:
    code = f"P-{uid()}"
    return Project(code=code, name="Rollout", erp_contact_id=contact_id, erp_tenant_id=tenant, budget=usd("12000.00"),
                   deadline=date(2025, 6, 30), tasks=list(tasks))


def task(name: str, kind: TaskChargeType = TaskChargeType.TIME, rate: str = "150.00") -> ProjectTask:
    return ProjectTask(name=name, charge_type=kind, rate=usd(rate), estimate_minutes=600)


async def test_create_project_creates_project_and_tasks(erp: XeroErp, tenant: str,
                                                        xero_sandbox: SandboxHandle) -> None:
    contact = await new_contact(erp, tenant)
    assert contact.erp_contact_id
    project = project_for(contact.erp_contact_id, tenant, task("Consulting"),
                          task("Milestone 1", TaskChargeType.FIXED, "5000.00"))
    created = await erp.create_project(tenant, project, idempotency_key=f"proj-{project.code}")
    assert created.erp_id and all(t.erp_id for t in created.tasks)
    doc = xero_sandbox.store.get("project", created.erp_id, tenant=tenant)
    assert doc["name"] == f"[{project.code}] Rollout" and doc["estimate"]["value"] == "12000.00"
    assert doc["deadlineUtc"] == "2025-06-30T00:00:00Z"
    tasks = stored(xero_sandbox, "task", tenant, projectId=created.erp_id)
    assert {(t["name"], t["chargeType"], t["rate"]["value"]) for t in tasks} == {
        ("Consulting", "TIME", "150.00"), ("Milestone 1", "FIXED", "5000.00")}


async def test_create_project_retried_creates_nothing_twice(erp: XeroErp, tenant: str,
                                                            xero_sandbox: SandboxHandle) -> None:
    contact = await new_contact(erp, tenant)
    assert contact.erp_contact_id
    project = project_for(contact.erp_contact_id, tenant, task("Design"))
    first = await erp.create_project(tenant, project, idempotency_key=f"proj-{project.code}")
    # A retry after a partial failure, with one more task than got created: only that one is added.
    bigger = project.model_copy(update={"tasks": [task("Design"), task("Build")]})
    second = await erp.create_project(tenant, bigger, idempotency_key=f"proj-{project.code}")
    third = await erp.create_project(tenant, bigger, idempotency_key=f"other-{project.code}")
    assert first.erp_id == second.erp_id == third.erp_id
    assert second.tasks[0].erp_id == first.tasks[0].erp_id
    assert [t.erp_id for t in third.tasks] == [t.erp_id for t in second.tasks]
    assert len(stored(xero_sandbox, "project", tenant, contactId=contact.erp_contact_id)) == 1
    assert len(stored(xero_sandbox, "task", tenant, projectId=first.erp_id)) == 2


async def test_close_project_and_time_entries(erp: XeroErp, tenant: str, xero_sandbox: SandboxHandle,
                                              settings: Settings) -> None:
    contact = await new_contact(erp, tenant)
    assert contact.erp_contact_id
    project = await erp.create_project(tenant, project_for(contact.erp_contact_id, tenant, task("Dev")),
                                       idempotency_key=uid())
    assert project.erp_id and project.tasks[0].erp_id
    async with httpx.AsyncClient() as client:
        users = (await client.get(f"{xero_sandbox.base_url}/_sandbox/tenants")).json()["tenants"]
    user_id = next(t for t in users if t["tenantId"] == tenant)["users"][0]["userId"]
    entry = TimeEntry(task_erp_id=project.tasks[0].erp_id, user_id=user_id, minutes=90, date=date(2024, 5, 2),
                      description="Kick-off")
    key = f"time-{uid()}"
    booked = await erp.add_time_entry(tenant, project.erp_id, entry, idempotency_key=key)
    again = await erp.add_time_entry(tenant, project.erp_id, entry, idempotency_key=key)
    assert booked.erp_id and booked.erp_id == again.erp_id
    [doc] = stored(xero_sandbox, "time_entry", tenant, projectId=project.erp_id)
    assert (doc["duration"], doc["dateUtc"], doc["description"]) == (90, "2024-05-02T00:00:00Z", "Kick-off")
    await erp.close_project(tenant, project.erp_id)
    assert xero_sandbox.store.get("project", project.erp_id, tenant=tenant)["status"] == "CLOSED"
    with pytest.raises(Rejected) as caught:  # a closed project takes no more time
        await erp.add_time_entry(tenant, project.erp_id, entry, idempotency_key=uid())
    assert "closed project" in caught.value.message


async def test_post_invoice_posts_authorised_accrec_once(erp: XeroErp, tenant: str,
                                                         xero_sandbox: SandboxHandle, settings: Settings) -> None:
    contact = await new_contact(erp, tenant)
    assert contact.erp_contact_id
    billing_id = f"in_{uid()}"
    invoice_id = await erp.post_invoice(tenant, invoice(billing_id, amount="200.00", tax="20.00"),
                                        erp_contact_id=contact.erp_contact_id, idempotency_key=f"inv-{billing_id}")
    again = await erp.post_invoice(tenant, invoice(billing_id, amount="200.00", tax="20.00"),
                                   erp_contact_id=contact.erp_contact_id, idempotency_key=f"retry-{billing_id}")
    assert again == invoice_id
    [doc] = stored(xero_sandbox, "invoice", tenant, Reference=billing_id)
    assert (doc["Type"], doc["Status"], doc["InvoiceNumber"]) == ("ACCREC", "AUTHORISED", f"BILL-{billing_id}")
    assert (doc["SubTotal"], doc["TotalTax"], doc["Total"], doc["AmountDue"]) == ("200.00", "20.00", "220.00", "220.00")
    line = doc["LineItems"][0]
    # US01's books (the default BOOKS_MAPPING): every product to 200, a taxable customer's tax as TAX001
    assert (line["AccountCode"], line["TaxType"], line["TaxAmount"]) == ("200", "TAX001", "20.00")
    assert doc["DueDateString"].startswith("2024-05-31")


async def test_record_payment_settles_the_invoice_once(erp: XeroErp, tenant: str,
                                                       xero_sandbox: SandboxHandle) -> None:
    contact = await new_contact(erp, tenant)
    assert contact.erp_contact_id
    billing_id = f"in_{uid()}"
    invoice_id = await erp.post_invoice(tenant, invoice(billing_id), erp_contact_id=contact.erp_contact_id,
                                        idempotency_key=uid())
    paid_at = datetime(2024, 5, 3, 12, tzinfo=UTC)
    part = Payment(billing_id=f"py_{uid()}", invoice_billing_id=billing_id, amount=usd("40.00"), paid_at=paid_at)
    rest = Payment(billing_id=f"py_{uid()}", invoice_billing_id=billing_id, amount=usd("60.00"), paid_at=paid_at)
    first = await erp.record_payment(tenant, invoice_id, part, idempotency_key=f"pay-{part.billing_id}")
    assert await erp.record_payment(tenant, invoice_id, part, idempotency_key=uid()) == first  # found by Reference
    doc = xero_sandbox.store.get("invoice", invoice_id, tenant=tenant)
    assert (doc["Status"], doc["AmountDue"], doc["AmountPaid"]) == ("AUTHORISED", "60.00", "40.00")
    await erp.record_payment(tenant, invoice_id, rest, idempotency_key=f"pay-{rest.billing_id}")
    doc = xero_sandbox.store.get("invoice", invoice_id, tenant=tenant)
    assert (doc["Status"], doc["AmountDue"]) == ("PAID", "0.00")
    payments = stored(xero_sandbox, "payment", tenant)
    assert len([p for p in payments if p["Invoice"]["InvoiceID"] == invoice_id]) == 2
    with pytest.raises(Rejected) as caught:  # nothing left to pay
        await erp.record_payment(tenant, invoice_id, Payment(billing_id=f"py_{uid()}", invoice_billing_id=billing_id,
                                                             amount=usd("1.00"), paid_at=paid_at),
                                 idempotency_key=uid())
    assert "Authorised documents" in caught.value.message


async def test_post_credit_note_is_allocated_to_its_invoice(erp: XeroErp, tenant: str,
                                                            xero_sandbox: SandboxHandle) -> None:
    contact = await new_contact(erp, tenant)
    assert contact.erp_contact_id
    billing_id = f"in_{uid()}"
    invoice_id = await erp.post_invoice(tenant, invoice(billing_id), erp_contact_id=contact.erp_contact_id,
                                        idempotency_key=uid())
    credit = CreditNote(billing_id=f"cn_{uid()}", invoice_billing_id=billing_id, amount=usd("25.00"),
                        reason="Service credit", issued_at=datetime(2024, 5, 4, tzinfo=UTC))
    key = f"cn-{credit.billing_id}"
    credit_id = await erp.post_credit_note(tenant, credit, erp_contact_id=contact.erp_contact_id,
                                           idempotency_key=key)
    assert await erp.post_credit_note(tenant, credit, erp_contact_id=contact.erp_contact_id,
                                      idempotency_key=key) == credit_id
    doc = xero_sandbox.store.get("credit_note", credit_id, tenant=tenant)
    assert (doc["Type"], doc["Reference"], doc["RemainingCredit"], doc["Status"]) == (
        "ACCRECCREDIT", credit.billing_id, "0.00", "PAID")
    assert len(doc["Allocations"]) == 1  # the retry did not allocate twice
    assert xero_sandbox.store.get("invoice", invoice_id, tenant=tenant)["AmountDue"] == "75.00"


async def test_post_credit_note_without_invoice_in_xero_is_refused(erp: XeroErp, tenant: str,
                                                                   xero_sandbox: SandboxHandle) -> None:
    """A credit reverses the lines it credits (their tax codes and accounts): with no invoice posted there is
    nothing to reverse, so nothing is booked (the ledger posts credits only after their invoice)."""
    contact = await new_contact(erp, tenant)
    assert contact.erp_contact_id
    credit = CreditNote(billing_id=f"cn_{uid()}", invoice_billing_id=f"in_{uid()}", amount=usd("10.00"))
    with pytest.raises(Rejected, match="is not posted"):
        await erp.post_credit_note(tenant, credit, erp_contact_id=contact.erp_contact_id, idempotency_key=uid())
    assert stored(xero_sandbox, "credit_note", tenant, Reference=credit.billing_id) == []


async def test_list_invoices_follows_pages(erp: XeroErp, settings: Settings, xero_sandbox: SandboxHandle) -> None:
    tenant = settings.entity("UK01").erp_tenant_id
    contact = await erp.upsert_customer(tenant, account(f"Pager {uid()}"), contact=None,
                                        reference=f"hubspot:company:{uid()}", idempotency_key=uid())
    batch = uid()
    body = {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact.erp_contact_id},
                          "Reference": f"in_{batch}_{n}", "Status": "AUTHORISED", "CurrencyCode": "GBP",
                          "Date": "2024-05-01", "DueDate": "2024-05-31",
                          "LineItems": [{"Description": "Seat", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}]}
                         for n in range(105)]}
    async with httpx.AsyncClient(timeout=30) as client:
        token = (await client.post(_xero(settings).token_endpoint,
                                   data={"grant_type": "client_credentials"},
                                   auth=(_xero(settings).client_id, _xero(settings).client_secret))
                 ).json()["access_token"]
        response = await client.put(f"{_xero(settings).base_url}/api.xro/2.0/Invoices", json=body,
                                    headers={"Authorization": f"Bearer {token}", "xero-tenant-id": tenant})
    assert response.status_code == 200
    requests_before = xero_sandbox.control.stats.requests
    invoices = await erp.list_invoices(tenant)
    mine = [i for i in invoices if i.billing_id.startswith(f"in_{batch}_")]
    assert len(mine) == 105 and len(invoices) >= 105
    assert xero_sandbox.control.stats.requests - requests_before >= 2  # more than one page
    one = mine[0]
    assert (one.status, one.total, one.legal_entity, one.customer_id) == (
        InvoiceStatus.OPEN, Money.of("10.00", "GBP"), "UK01", contact.erp_contact_id)
    assert one.lines[0].description == "Seat" and one.due_on == date(2024, 5, 31)
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await erp.list_invoices(tenant, modified_since=later) == []


async def test_list_tenants_names_every_legal_entity(erp: XeroErp, settings: Settings) -> None:
    tenants = await erp.list_tenants()
    assert {e.erp_tenant_id for e in settings.legal_entities} <= set(tenants)


# -- errors --------------------------------------------------------------------------------------
async def test_server_error_is_unavailable(erp: XeroErp, tenant: str, xero_sandbox: SandboxHandle) -> None:
    await erp.list_tenants()  # the token is fetched before the fault
    with xero_sandbox.faults(error_rate=1, status=503), pytest.raises(Unavailable) as caught:
        await erp.find_customer(tenant, f"ref-{uid()}")
    assert caught.value.status == 503


async def test_429_is_rate_limited_with_retry_after(erp: XeroErp, tenant: str, xero_sandbox: SandboxHandle) -> None:
    await erp.list_tenants()
    with xero_sandbox.faults(rate_limit_per_second=0.5, rate_limit_burst=1), pytest.raises(RateLimited) as caught:
        for _ in range(3):
            await erp.find_customer(tenant, f"ref-{uid()}")
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    assert "minute limit" in caught.value.message


async def test_injected_429_is_rate_limited(erp: XeroErp, tenant: str, xero_sandbox: SandboxHandle) -> None:
    await erp.list_tenants()
    with xero_sandbox.faults(error_rate=1, status=429), pytest.raises(RateLimited) as caught:
        await erp.find_customer(tenant, f"ref-{uid()}")
    assert caught.value.retry_after == 1.0


async def test_timeout_is_unavailable(settings: Settings, tenant: str, xero_sandbox: SandboxHandle) -> None:
    adapter = from_settings(settings, timeout=0.3)
    try:
        await adapter.list_tenants()
        with xero_sandbox.faults(latency_ms=1500), pytest.raises(Unavailable) as caught:
            await adapter.find_customer(tenant, f"ref-{uid()}")
        assert "timeout" in caught.value.message
    finally:
        await adapter.aclose()


async def test_validation_error_is_rejected_with_xeros_messages(erp: XeroErp, tenant: str) -> None:
    contact = await new_contact(erp, tenant)
    assert contact.erp_contact_id
    erp.books = erp.books.model_copy(deep=True)  # this adapter's own copy: the session's settings stay sound
    for books in erp.books.entities:  # a code the start-up check would refuse, to see Xero's own refusal
        books.tax = [TaxRule(status=TaxStatus.TAXABLE, tax_code="NOT-A-TAX-TYPE")]
    bad = invoice(f"in_{uid()}", tax="5.00")
    with pytest.raises(Rejected) as caught:
        await erp.post_invoice(tenant, bad, erp_contact_id=contact.erp_contact_id, idempotency_key=uid())
    assert "A validation exception occurred" in caught.value.message
    assert "The TaxType code 'NOT-A-TAX-TYPE' does not exist" in caught.value.message


async def test_wrong_client_secret_is_auth_failed(settings: Settings, tenant: str,
                                                  xero_sandbox: SandboxHandle) -> None:
    adapter = from_settings(with_vendor(settings, "xero", client_secret="not-the-secret"))
    try:
        with pytest.raises(AuthFailed) as caught:
            await adapter.find_customer(tenant, "anything")
        assert "invalid_client" in caught.value.message
    finally:
        await adapter.aclose()


async def test_unknown_tenant_is_auth_failed(erp: XeroErp) -> None:
    with pytest.raises(AuthFailed) as caught:
        await erp.find_customer(str(uuid.uuid4()), "anything")
    assert caught.value.status == 403 and "AuthorizationUnsuccessful" in caught.value.message


async def test_revoked_token_is_fetched_again(erp: XeroErp, tenant: str, xero_sandbox: SandboxHandle) -> None:
    await erp.list_tenants()
    revoked = xero_sandbox.post_control("tokens/revoke").json()["revoked"]
    assert revoked >= 1
    assert await erp.find_customer(tenant, f"ref-{uid()}") is None  # the 401 led to one new token
