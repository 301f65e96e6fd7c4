"""Contract: every request NetSuiteErp sends, and every record the emulator answers, passes the JSON Schema written
for its record type from NetSuite's REST reference (``tests/connectors/schemas/netsuite/``, URLs cited in each).

The adapter runs a whole engagement against the emulator through a recording transport (injected, nothing
patched): customers, a project with tasks and budget, an invoice with tax, a partial payment, a credit memo applied
and reversed, a void, the SuiteQL feeds. Create and upsert bodies must carry the schema's required fields; PATCH
bodies are checked with ``required`` dropped; SuiteQL requests must be ``{"q": ...}`` with ``Prefer: transient``
and ``limit``/``offset``."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
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
from connectors.netsuite import NetSuiteErp, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle

SCHEMAS = Path(__file__).parent / "schemas" / "netsuite"
RECORD_PATH = re.compile(r"^/services/rest/record/v1/(?P<type>[A-Za-z]+)(?:/(?P<key>[^/]+))?$")
TENANT = "1"


def schema(record_type: str, *, partial: bool = False) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{record_type}.schema.json").read_text())
    if partial:
        loaded = {**loaded, "required": []}
    return loaded


def check(record_type: str, body: Any, *, partial: bool = False) -> None:
    jsonschema.Draft202012Validator(schema(record_type, partial=partial),
                                    format_checker=jsonschema.FormatChecker()).validate(body)


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    headers: httpx.Headers
    body: bytes
    status: int
    answer: bytes


class Recording(httpx.AsyncBaseTransport):
    """Every exchange over a real HTTP transport, kept for the contract check."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self.inner.handle_async_request(request)
        answer = await response.aread()
        self.exchanges.append(Exchange(request.method, request.url.path, request.url.query.decode(), request.headers,
                                       body, response.status_code, answer))
        return httpx.Response(response.status_code, headers=response.headers, content=answer, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest_asyncio.fixture
async def recorded(settings: Settings, netsuite_sandbox: SandboxHandle) -> AsyncIterator[tuple[NetSuiteErp, Recording]]:
    transport = Recording()
    adapter = from_settings(settings, transport=transport, page_size=2)
    yield adapter, transport
    await adapter.aclose()
    await transport.aclose()


def uid() -> str:
    return uuid.uuid4().hex[:10]


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


async def engagement(erp: NetSuiteErp) -> None:
    """One engagement through every write the port has."""
    ref = f"hubspot-company-{uid()}-US01"
    person = Contact(first_name="Ada", last_name="Lovelace", email=f"{uid()}@example.com", role="billing")
    account = Account(name=f"Contract Co {ref}", tax_number="US-1", payment_terms_days=30,
                      address=Address(line1="1 Main St", city="Austin", region="TX", postal_code="73301", country="US"))
    customer = await erp.upsert_customer(TENANT, account, contact=person, reference=ref, idempotency_key=ref)
    await erp.upsert_customer(TENANT, account.model_copy(update={"payment_terms_days": 15}), contact=person,
                              reference=ref, idempotency_key=f"{ref}-again")
    contact = customer.erp_contact_id or ""
    code = f"P-{uid()}-US01"
    project = await erp.create_project(TENANT, Project(
        code=code, name="Rollout", erp_contact_id=contact, erp_tenant_id=TENANT, budget=usd("5000.00"),
        deadline=date(2027, 3, 31), tasks=[ProjectTask(name="Build", charge_type=TaskChargeType.TIME,
                                                       rate=usd("150.00"), estimate_minutes=90)]),
        idempotency_key=code)
    await erp.update_project(TENANT, project.model_copy(update={"budget": usd("6000.00"), "tasks": [
        project.tasks[0].model_copy(update={"rate": usd("175.00")}),
        ProjectTask(name="Train", charge_type=TaskChargeType.FIXED, rate=usd("900.00"))]}), idempotency_key="u")
    await erp.add_time_entry(TENANT, project.erp_id or "", TimeEntry(
        task_erp_id=project.tasks[0].erp_id or "", user_id="7", minutes=95, date=date(2027, 1, 4),
        description="Workshop"), idempotency_key=f"time-{code}")
    billing_id = f"in_{uid()}"
    line = InvoiceLine(description="Build", quantity=Decimal(3), unit_amount=usd("33.33"), amount=usd("100.00"),
                       taxes=[TaxLine(name="Sales tax", rate_percent=Decimal("8.25"), amount=usd("8.25"))])
    bill = Invoice(billing_id=billing_id, customer_id="cus_1", currency="USD", status=InvoiceStatus.OPEN,
                   issued_on=date(2027, 1, 1), due_on=date(2027, 1, 31), lines=[line], subtotal=usd("100.00"),
                   tax=usd("8.25"), total=usd("108.25"), amount_paid=usd("0"), amount_due=usd("108.25"))
    posted = await erp.post_invoice(TENANT, bill, erp_contact_id=contact, idempotency_key=billing_id)
    await erp.record_payment(TENANT, posted, Payment(billing_id=f"ch_{uid()}", invoice_billing_id=billing_id,
                                                     amount=usd("50.00"), paid_at=datetime(2027, 1, 5, tzinfo=UTC)),
                             idempotency_key="p")
    note = CreditNote(billing_id=f"cn_{uid()}", invoice_billing_id=billing_id, amount=usd("8.25"),
                      issued_at=datetime(2027, 1, 6, tzinfo=UTC), before_payment=True)
    await erp.post_credit_note(TENANT, note, erp_contact_id=contact, idempotency_key="c")
    await erp.reverse_credit_note(TENANT, note, idempotency_key="r")
    other = bill.model_copy(update={"billing_id": f"in_{uid()}"})
    await erp.void_invoice(TENANT, await erp.post_invoice(TENANT, other, erp_contact_id=contact,
                                                          idempotency_key="o"), idempotency_key="v")
    await erp.close_project(TENANT, project.erp_id or "")
    for read in (erp.invoices_page, erp.payments_page, erp.credit_notes_page):
        cursor: str | None = None
        for _ in range(200):
            _items, cursor = await read(TENANT, cursor)
            if cursor is None:
                break
    await erp.list_projects(TENANT, include_closed=True)
    await erp.find_customers(TENANT, [ref])
    await erp.archive_customer(TENANT, contact)


async def test_netsuite_contract_every_request_and_record_passes_its_schema(
        recorded: tuple[NetSuiteErp, Recording]) -> None:
    erp, transport = recorded
    await engagement(erp)

    written: set[str] = set()
    read: set[str] = set()
    queries = 0
    for x in transport.exchanges:
        lookup_missed = x.method == "GET" and "/eid:" in x.path and x.status == 404  # look-up before create
        assert x.status < 400 or lookup_missed, (x.method, x.path, x.answer[:300])
        if lookup_missed:
            continue
        if x.path == "/services/rest/query/v1/suiteql":
            queries += 1
            assert x.method == "POST" and x.headers["Prefer"] == "transient"
            assert set(json.loads(x.body)) == {"q"} and re.fullmatch(r"limit=\d+&offset=\d+", x.query)
            continue
        match = RECORD_PATH.match(x.path)
        assert match, x.path
        record_type = match["type"]
        if x.method in ("PUT", "POST", "PATCH"):
            check(record_type, json.loads(x.body), partial=x.method == "PATCH")
            written.add(record_type)
        elif x.method == "GET" and record_type in {p.name.split(".")[0] for p in SCHEMAS.glob("*.json")}:
            check(record_type, json.loads(x.answer))
            read.add(record_type)
    everything = {"customer", "job", "projectTask", "timeBill", "invoice", "customerPayment", "creditMemo"}
    assert written == everything and read == everything - {"timeBill"} and queries >= 6  # time is never read back


def test_netsuite_contract_schemas_refuse_what_netsuite_would() -> None:
    with pytest.raises(jsonschema.ValidationError, match="'ContactNumber' does not match any of the regexes"):
        check("customer", {"companyName": "X", "subsidiary": {"id": "1"}, "ContactNumber": "x"})
    with pytest.raises(jsonschema.ValidationError, match="'item' is a required property"):
        check("invoice", {"entity": {"id": "1"}, "subsidiary": {"id": "1"}})
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        check("customerPayment", {"customer": {"id": "1"}, "payment": 1, "apply": {"items": []},
                                  "externalId": "hubspot:company:1"})
    with pytest.raises(jsonschema.ValidationError):
        check("job", {"companyName": "X", "parent": {"id": "1"}, "subsidiary": {"id": "1"},
                      "projectedEndDate": "31/03/2027"})
    check("projectTask", {"title": "Build", "company": {"id": "7"}, "custevent_revops_rate": 1.5})
