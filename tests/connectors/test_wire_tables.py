"""Stripe's and Xero's mappers build every payload from their wire tables: built from fully populated canonical
objects, no payload carries a field its table does not list, every listed field is sent, and every table row is a
row of the generated field mapping (so a mapper change shows in ``make docs``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from canonical import (
    Account,
    Address,
    BillingInterval,
    Contact,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    Payment,
    Project,
    ProjectTask,
    ScheduledCharge,
    TaskChargeType,
    TaxLine,
    TimeEntry,
)
from canonical.books import invoice_postings
from connectors.fieldmap import field_mappings
from connectors.stripe import mapping as stripe
from connectors.wire import Wire, build, paths
from connectors.xero import mapping as xero
from observability import docs
from settings import DEFAULT_BOOKS

ADDRESS = Address(line1="1 Main St", line2="Floor 2", city="Springfield", region="IL", postal_code="62701",
                  country="US")
ACCOUNT = Account(crm_id="101", name="Acme", country="US", address=ADDRESS, tax_number="US-123",
                  payment_terms_days=30, erp_contact_id="c-1", billing_customer_id="cus_1", created_by="run-1")
CONTACT = Contact(crm_id="201", email="ap@acme.test", first_name="Ada", last_name="Lovelace", phone="+1 555 0100")
LINE = InvoiceLine(description="Licence", quantity=Decimal(3), unit_amount=Money.of("100.00", "USD"),
                   amount=Money.of("300.00", "USD"), product_code="LIC",
                   taxes=[TaxLine(name="txr_1", rate_percent=Decimal(10), amount=Money.of("30.00", "USD"))])
INVOICE = Invoice(billing_id="in_1", number="INV-1", customer_id="cus_1", currency="USD", status=InvoiceStatus.OPEN,
                  issued_on=date(2026, 1, 1), due_on=date(2026, 1, 31), lines=[LINE],
                  subtotal=Money.of("300.00", "USD"), tax=Money.of("30.00", "USD"), total=Money.of("330.00", "USD"),
                  amount_paid=Money.of("0", "USD"), amount_due=Money.of("330.00", "USD"), crm_deal_id="9",
                  legal_entity="US01")
CHARGE = ScheduledCharge(product_code="LIC", description="Licence", unit_amount=Money.of("100.00", "USD"),
                         quantity=Decimal(3), interval=BillingInterval.QUARTER, bill_on=date(2026, 1, 1))
NOTE = CreditNote(billing_id="cn_1", invoice_billing_id="in_1", amount=Money.of("10.00", "USD"),
                  reason="goodwill", issued_at=datetime(2026, 1, 5, tzinfo=UTC))
PROJECT = Project(erp_id="p-1", code="P-9-US01", name="Acme rollout", erp_contact_id="c-1", erp_tenant_id="t-1",
                  budget=Money.of("1000.00", "USD"), deadline=date(2026, 6, 30))
TASK = ProjectTask(erp_id="t-1", name="Consultant time", charge_type=TaskChargeType.TIME,
                   rate=Money.of("150.00", "USD"), estimate_minutes=600)


def _covered(table: Iterable[Wire[Any]]) -> set[str]:
    return {row.vendor for row in table if row.documented}


def _outside(payload: dict[str, Any], table: Iterable[Wire[Any]]) -> list[str]:
    """Paths sent that neither the table nor a documented parent row lists."""
    listed = _covered(table)
    unlisted = []
    for path in paths(payload):
        parts = path.split(".")
        if not any(".".join(parts[:n]) in listed for n in range(1, len(parts) + 1)):
            unlisted.append(path)
    return unlisted


def _payloads() -> list[tuple[str, dict[str, Any], tuple[Wire[Any], ...]]]:
    xero_invoice = xero.invoice_to_xero(INVOICE, contact_id="c-1", books=DEFAULT_BOOKS.of("US01"))
    return [
        ("stripe customer", stripe.customer_params(ACCOUNT, CONTACT, reference="hubspot-company-101-US01",
                                                   legal_entity="US01", marker="run-1"), stripe.CUSTOMER_OUT),
        ("stripe product", stripe.product_params(CHARGE, {"revops_deal_id": "9"}), stripe.PRODUCT_OUT),
        ("stripe price", stripe.price_params(CHARGE, "prod_1", recurring=True, metadata={"revops_deal_id": "9"}),
         stripe.PRICE_OUT),
        ("stripe credit note", stripe.credit_note_params(NOTE), stripe.CREDIT_NOTE_OUT),
        ("xero contact", xero.contact_to_xero({**xero.account_fields(ACCOUNT)}, email=CONTACT.email, person=CONTACT,
                                              reference="hubspot-company-101-US01", marker="run-1"),
         xero.CONTACT_OUT),
        ("xero project", xero.project_to_xero(PROJECT, "c-1"), xero.PROJECT_OUT),
        ("xero task", xero.task_to_xero(TASK), xero.TASK_OUT),
        ("xero time entry", xero.time_entry_to_xero(TimeEntry(task_erp_id="t-1", user_id="u-1", minutes=90,
                                                              date=date(2026, 1, 2), description="Workshop")),
         xero.TIME_ENTRY_OUT),
        ("xero invoice", xero_invoice, xero.INVOICE_OUT),
        ("xero invoice line", xero_invoice["LineItems"][0], xero.LINE_OUT),
        ("xero payment", xero.payment_to_xero(Payment(billing_id="ch_1", invoice_billing_id="in_1",
                                                      amount=Money.of("330.00", "USD"),
                                                      paid_at=datetime(2026, 1, 10, tzinfo=UTC)),
                                              invoice_id="x-inv-1", bank_account_code="090"), xero.PAYMENT_OUT),
        ("xero credit note", xero.credit_note_to_xero(NOTE, contact_id="c-1", credited=invoice_postings(
            DEFAULT_BOOKS.of("US01"), INVOICE)),
         xero.CREDIT_NOTE_OUT),
    ]


@pytest.mark.parametrize("name", [name for name, _p, _t in _payloads()])
def test_wire_tables_every_field_sent_is_listed_and_every_listed_field_is_sent(name: str) -> None:
    payload, table = next((p, t) for n, p, t in _payloads() if n == name)
    assert _outside(payload, table) == []
    sent = set(paths(payload))
    # a fully populated object sends every row (a row may be a parent of what is sent)
    missing = [row.vendor for row in table if row.documented
               and not any(p == row.vendor or p.startswith(row.vendor + ".") for p in sent)]
    assert missing == []


def test_wire_tables_a_field_outside_the_table_is_caught() -> None:
    """The check above can fail: a payload with one key more than the table lists is reported."""
    payload = stripe.customer_params(ACCOUNT, CONTACT, reference="r", legal_entity="US01")
    payload["metadata"]["smuggled"] = "x"
    payload["shipping"] = {"name": "x"}
    assert _outside(payload, stripe.CUSTOMER_OUT) == ["metadata.smuggled", "shipping.name"]


def test_wire_tables_build_is_the_payload() -> None:
    """The mapping functions are the tables: building the table gives the same payload, keys in order."""
    payload = xero.project_to_xero(PROJECT, "c-1")
    assert payload == build(xero.PROJECT_OUT, xero.ProjectSource(PROJECT, "c-1"))
    assert list(payload) == ["contactId", "name", "estimateAmount", "deadlineUtc"]
    assert payload["name"] == "[P-9-US01] Acme rollout" and payload["deadlineUtc"] == "2026-06-30T00:00:00Z"


def test_wire_tables_reads_round_trip() -> None:
    """A Xero invoice and project read back through the incoming tables."""
    doc = {**xero.invoice_to_xero(INVOICE, contact_id="c-1", books=DEFAULT_BOOKS.of("US01")),
           "InvoiceID": "x-1", "SubTotal": Decimal("300.00"), "TotalTax": Decimal("30.00"), "Total": Decimal("330.00"),
           "AmountPaid": Decimal(0), "AmountDue": Decimal("330.00")}
    doc["LineItems"][0]["LineAmount"] = Decimal("300.00")
    read = xero.invoice_from_xero(doc, legal_entity="US01")
    assert (read.billing_id, read.number, read.customer_id, read.currency, read.status, read.issued_on, read.due_on,
            read.total, read.legal_entity) == ("in_1", "INV-1", "c-1", "USD", InvoiceStatus.OPEN, date(2026, 1, 1),
                                               date(2026, 1, 31), Money.of("330.00", "USD"), "US01")
    assert read.metadata["erp_invoice_id"] == "x-1"
    project = xero.project_from_xero({"projectId": "p-1", "name": "[P-9-US01] Acme rollout", "contactId": "c-1",
                                      "currencyCode": "USD", "estimate": {"currency": "USD", "value": 1000},
                                      "deadlineUtc": "2026-06-30T00:00:00Z"},
                                     [xero.task_to_xero(TASK) | {"taskId": "t-1"}], tenant_id="t-1")
    assert project == PROJECT.model_copy(update={"tasks": [TASK]})


def test_wire_tables_every_row_is_in_the_generated_field_mapping() -> None:
    rendered = docs.render_field_mapping()
    tables: dict[str, list[tuple[Wire[Any], ...]]] = {
        "stripe": [stripe.CUSTOMER_OUT, stripe.CUSTOMER_IN, stripe.PRODUCT_OUT, stripe.PRICE_OUT, stripe.INVOICE_IN,
                   stripe.CREDIT_NOTE_OUT, stripe.CREDIT_NOTE_IN],
        "xero": [xero.CONTACT_OUT, xero.CONTACT_IN, xero.PROJECT_OUT, xero.PROJECT_IN, xero.TASK_OUT, xero.TASK_IN,
                 xero.TIME_ENTRY_OUT, xero.INVOICE_OUT, xero.INVOICE_IN, xero.LINE_OUT, xero.PAYMENT_OUT,
                 xero.CREDIT_NOTE_OUT]}
    for vendor, vendor_tables in tables.items():
        rows = {(r.canonical, r.vendor_field) for r in field_mappings()[vendor]}
        for table in vendor_tables:
            for row in table:
                if row.documented:
                    assert (row.canonical, row.vendor) in rows, (vendor, row)
                    assert f"| `{row.canonical}` | `{row.vendor.replace('|', chr(92) + '|')}` |" in rendered
    # no (object, canonical, vendor field) pair twice: read and written the same way is one row
    for vendor in ("stripe", "xero"):
        keys = [(r.vendor_object, r.canonical, r.vendor_field) for r in field_mappings()[vendor]]
        assert len(keys) == len(set(keys)), vendor
