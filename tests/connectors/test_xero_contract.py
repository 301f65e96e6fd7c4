"""Contract: every request XeroErp sends and every response the emulator gives pass Xero's published
specs, checked by two Prism proxies (accounting and projects) between the adapter and the emulator.

Both specs mount their paths at the root (``/Contacts``, ``/Projects``) while the emulator serves
them under ``/api.xro/2.0`` and ``/projects.xro/2.0``. Prism's proxy joins the upstream URL's path
with the request path, so each proxy's upstream is the emulator *with* that prefix, and the
adapter's ``accounting_url``/``projects_url`` point at the proxies' roots. The token request goes
straight to the emulator (``/connect/token`` is in no spec).

Prism 5.16 silently skips validating bodies whose schemas are recursive (Invoice -> Payment ->
Invoice...), so every accounting exchange is also checked here with ``jsonschema`` against the
operation's request and response schemas from the same spec file."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
import yaml

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
from connectors.xero import XeroErp, from_settings
from settings import Settings
from tests.helpers.prism import prism_proxy, spec_path, violations
from tests.helpers.servers import SandboxHandle, vendor_settings


def _xero(settings: Settings) -> Any:
    return vendor_settings(settings, "xero")


@dataclass
class Proxies:
    accounting: str
    projects: str


@pytest.fixture(scope="module")
def proxies(settings: Settings, xero_sandbox: SandboxHandle, prism_log_dir: Path) -> Iterator[Proxies]:
    """Prism in front of the emulator, once per module (the accounting spec takes ~20 s to load)."""
    with prism_proxy(spec_path("xero/xero_accounting.yaml"), f"{xero_sandbox.base_url}/api.xro/2.0",
                     log_dir=prism_log_dir) as accounting, \
            prism_proxy(spec_path("xero/xero-projects.yaml"), f"{xero_sandbox.base_url}/projects.xro/2.0",
                        log_dir=prism_log_dir) as projects:
        yield Proxies(accounting=accounting.base_url, projects=projects.base_url)


class SpecCheck:
    """JSON-Schema validation of one exchange against its operation in an OpenAPI 3.0 file."""

    def __init__(self, spec_file: Path) -> None:
        with spec_file.open() as handle:
            self.spec: dict[str, Any] = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        self.routes = [(re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), path)
                       for path in self.spec["paths"]]

    def _validate(self, schema: dict[str, Any], payload: bytes, where: str) -> list[str]:
        document = {"allOf": [schema], "components": self.spec["components"]}
        try:
            data = json.loads(payload)
        except ValueError:
            return [f"{where}: not JSON"]
        return [f"{where} {'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in jsonschema.Draft7Validator(document).iter_errors(data)]

    def errors(self, method: str, path: str, request_body: bytes, status: int, response_body: bytes) -> list[str]:
        operation = next((self.spec["paths"][p][method.lower()] for rx, p in self.routes
                          if rx.match(path) and method.lower() in self.spec["paths"][p]), None)
        if operation is None:
            return [f"{method} {path}: no operation in the spec"]
        found: list[str] = []
        if request_body:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            found += self._validate(schema, request_body, "request")
        response = operation["responses"].get(str(status))
        if response is None:
            return [*found, f"response status {status} is not in the spec"]
        if "$ref" in response:
            response = self.spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None and response_body:
            found += self._validate(schema, response_body, "response")
        return found


@pytest.fixture(scope="module")
def accounting_check() -> SpecCheck:
    return SpecCheck(spec_path("xero/xero_accounting.yaml"))


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """Records each exchange that went through a Prism proxy, with Prism's verdict."""

    proxied: tuple[str, ...]
    accounting: str
    check: SpecCheck
    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)
    exchanges: list[dict[str, Any]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if str(request.url).startswith(self.proxied):
            found: list[Any] = list(violations(response))
            if str(request.url).startswith(self.accounting):
                found += self.check.errors(request.method, request.url.path, request.content,
                                           response.status_code, response.content)
            self.exchanges.append({"call": f"{request.method} {request.url.path}", "status": response.status_code,
                                   "violations": found,
                                   "body": response.text[:400] if response.status_code >= 400 else ""})
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def assert_clean(self, *, at_least: int) -> None:
        """Prism let every request through (a request it refuses comes back 4xx) and found no
        violation in any response."""
        assert len(self.exchanges) >= at_least, self.exchanges
        bad = [e for e in self.exchanges if e["violations"] or e["status"] >= 400]
        assert not bad, bad


@pytest_asyncio.fixture
async def routed(settings: Settings, proxies: Proxies,
                 accounting_check: SpecCheck) -> AsyncIterator[tuple[XeroErp, Recorder]]:
    recorder = Recorder(proxied=(proxies.accounting, proxies.projects), accounting=proxies.accounting,
                        check=accounting_check)
    adapter = from_settings(settings, transport=recorder, accounting_url=proxies.accounting,
                            projects_url=proxies.projects)
    yield adapter, recorder
    await adapter.aclose()


def uid() -> str:
    return uuid.uuid4().hex[:10]


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


@pytest.fixture
def tenant(settings: Settings) -> str:
    return settings.entity("US01").erp_tenant_id


async def test_contract_customers(routed: tuple[XeroErp, Recorder], tenant: str, xero_sandbox: SandboxHandle) -> None:
    erp, recorder = routed
    ref = f"hubspot:company:{uid()}"
    acct = Account(name=f"Contract Co {ref}", tax_number="US-1", payment_terms_days=30,
                   address=Address(line1="1 Main St", city="Austin", region="TX", postal_code="73301", country="US"))
    person = Contact(first_name="Grace", last_name="Hopper", email=f"{uid()}@example.com")
    created = await erp.upsert_customer(tenant, acct, contact=person, reference=ref, idempotency_key=ref)
    renamed = acct.model_copy(update={"name": f"Contract Co (renamed) {ref}"})
    updated = await erp.upsert_customer(tenant, renamed, contact=person, reference=ref, idempotency_key=f"{ref}-2")
    assert updated.erp_contact_id == created.erp_contact_id and updated.name == renamed.name
    assert (await erp.find_customer(tenant, ref)) is not None
    assert created.erp_contact_id is not None
    await erp.archive_customer(tenant, created.erp_contact_id)
    recorder.assert_clean(at_least=6)


async def test_contract_projects_and_time(routed: tuple[XeroErp, Recorder], tenant: str,
                                          xero_sandbox: SandboxHandle) -> None:
    erp, recorder = routed
    ref = f"hubspot:company:{uid()}"
    contact = await erp.upsert_customer(tenant, Account(name=f"Projects Co {ref}"), contact=None, reference=ref,
                                        idempotency_key=ref)
    assert contact.erp_contact_id
    project = Project(code=f"P-{uid()}", name="Contract rollout", erp_contact_id=contact.erp_contact_id,
                      erp_tenant_id=tenant, budget=usd("9000.00"), deadline=date(2025, 3, 31),
                      tasks=[ProjectTask(name="Consulting", charge_type=TaskChargeType.TIME, rate=usd("120.00"),
                                         estimate_minutes=1200),
                             ProjectTask(name="Go-live", charge_type=TaskChargeType.FIXED, rate=usd("3000.00"))])
    created = await erp.create_project(tenant, project, idempotency_key=project.code)
    again = await erp.create_project(tenant, project, idempotency_key=project.code)
    assert again.erp_id == created.erp_id and created.erp_id and created.tasks[0].erp_id
    async with httpx.AsyncClient() as client:
        tenants = (await client.get(f"{xero_sandbox.base_url}/_sandbox/tenants")).json()["tenants"]
    user_id = next(t for t in tenants if t["tenantId"] == tenant)["users"][0]["userId"]
    booked = await erp.add_time_entry(tenant, created.erp_id, TimeEntry(
        task_erp_id=created.tasks[0].erp_id, user_id=user_id, minutes=45, date=date(2024, 5, 2),
        description="Workshop"), idempotency_key=uid())
    assert booked.erp_id
    await erp.close_project(tenant, created.erp_id)
    recorder.assert_clean(at_least=8)


async def test_contract_receivables(routed: tuple[XeroErp, Recorder], tenant: str) -> None:
    erp, recorder = routed
    ref = f"hubspot:company:{uid()}"
    contact = await erp.upsert_customer(tenant, Account(name=f"Receivables Co {ref}"), contact=None, reference=ref,
                                        idempotency_key=ref)
    assert contact.erp_contact_id
    billing_id = f"in_{uid()}"
    line = InvoiceLine(description="Licence", quantity=Decimal(3), unit_amount=usd("33.33"), amount=usd("99.99"),
                       taxes=[TaxLine(name="Sales tax", rate_percent=Decimal(10), amount=usd("10.00"))])
    invoice = Invoice(billing_id=billing_id, number=f"N-{billing_id}", customer_id="cus_1", currency="USD",
                      status=InvoiceStatus.OPEN, issued_on=date(2024, 5, 1), due_on=date(2024, 5, 31), lines=[line],
                      subtotal=usd("99.99"), tax=usd("10.00"), total=usd("109.99"), amount_paid=usd("0"),
                      amount_due=usd("109.99"))
    invoice_id = await erp.post_invoice(tenant, invoice, erp_contact_id=contact.erp_contact_id, idempotency_key=uid())
    paid_at = datetime(2024, 5, 2, tzinfo=UTC)
    await erp.record_payment(tenant, invoice_id, Payment(billing_id=f"py_{uid()}", invoice_billing_id=billing_id,
                                                         amount=usd("50.00"), paid_at=paid_at), idempotency_key=uid())
    await erp.post_credit_note(tenant, CreditNote(billing_id=f"cn_{uid()}", invoice_billing_id=billing_id,
                                                  amount=usd("9.99"), issued_at=paid_at),
                               erp_contact_id=contact.erp_contact_id, idempotency_key=uid())
    listed = await erp.list_invoices(tenant, modified_since=datetime(2020, 1, 1, tzinfo=UTC))
    [mine] = [i for i in listed if i.billing_id == billing_id]
    assert mine.amount_due == usd("50.00") and mine.total == usd("109.99")
    recorder.assert_clean(at_least=9)


def test_contract_check_can_fail(proxies: Proxies, settings: Settings, tenant: str,
                                       accounting_check: SpecCheck) -> None:
    """Malformed raw requests are refused by Prism before they reach the emulator, and a malformed
    invoice body (which Prism lets through) is caught by the JSON-Schema check."""
    token = httpx.post(_xero(settings).token_endpoint, data={"grant_type": "client_credentials"},
                       auth=(_xero(settings).client_id, _xero(settings).client_secret)).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    no_tenant = httpx.get(f"{proxies.accounting}/Contacts", headers=auth, timeout=30)
    assert no_tenant.status_code == 422 and "xero-tenant-id" in no_tenant.text
    bad_contact = httpx.put(f"{proxies.accounting}/Contacts", json={"Contacts": [{"Name": 42}]},
                            headers={**auth, "xero-tenant-id": tenant}, timeout=30)
    assert bad_contact.status_code == 422 and "Name" in bad_contact.text
    bad_invoice = json.dumps({"Invoices": [{"Type": "ACCREC", "LineItems": "not a list"}]}).encode()
    assert any("LineItems" in e for e in accounting_check.errors("PUT", "/Invoices", bad_invoice, 200, b""))
    bad_response = json.dumps({"Invoices": [{"Status": "PENDING"}]}).encode()
    assert any("PENDING" in e for e in accounting_check.errors("GET", "/Invoices", b"", 200, bad_response))
    bad_task = httpx.post(f"{proxies.projects}/Projects/{uuid.uuid4()}/Tasks",
                          json={"name": "x", "rate": {"currency": "USD", "value": 1}, "chargeType": "HOURLY"},
                          headers={**auth, "xero-tenant-id": tenant}, timeout=30)
    assert bad_task.status_code == 422 and "chargeType" in bad_task.text
