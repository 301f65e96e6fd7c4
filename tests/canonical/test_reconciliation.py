"""The reconciliation rules, one finding kind at a time (pure functions, milliseconds)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from canonical import BillingModel, Contract, ContractStatus, ContractTerms, CreditNote, Invoice, InvoiceStatus, Money
from canonical import Project as ErpProject
from canonical.amendments import BillingRecord, BillingRecordKind
from canonical.contract import RateCardEntry, RecurringCharge
from canonical.deal import BillingInterval
from canonical.keys import closing_credit_note_id, write_off_credit_note_id
from canonical.reconciliation import (
    Delivery,
    EntityProject,
    ErpCreditNote,
    ErpPayment,
    Figures,
    FindingKind,
    ProjectBilling,
    Receivables,
    Severity,
    compare_crm_figures,
    compare_delivery,
    compare_receivables,
    compare_unroutable,
    expected_figures,
    periods_in_term,
    schedule_mismatch,
    tolerance_for,
)
from tests.helpers.ids import SYSTEMS

TOL = Decimal("0.01")
TODAY = date(2026, 11, 29)


def billing(invoice_id: str, total: str, *, currency: str = "USD", paid: str = "0", status: InvoiceStatus =
            InvoiceStatus.OPEN, due: date | None = date(2026, 12, 29), deal: str | None = "d1",
            charges: list[str] | None = None) -> Invoice:
    t, p = Decimal(total), Decimal(paid)
    return Invoice(billing_id=invoice_id, number=f"N-{invoice_id}", customer_id="cus_1", currency=currency,
                   status=status, due_on=due, subtotal=Money.of(total, currency), tax=Money.zero(currency),
                   total=Money.of(total, currency), amount_paid=Money.of(paid, currency),
                   amount_due=Money(amount=t - p if status is InvoiceStatus.OPEN else Decimal(0), currency=currency),
                   crm_deal_id=deal, legal_entity="US01", payment_ids=charges or [])


def erp(erp_id: str, ref: str, total: str, *, currency: str = "USD", paid: str = "0", status: str = "AUTHORISED",
        due: date | None = date(2026, 12, 29)) -> Invoice:
    t, p = Decimal(total), Decimal(paid)
    canonical = {"AUTHORISED": InvoiceStatus.OPEN, "PAID": InvoiceStatus.PAID, "VOIDED": InvoiceStatus.VOID}[status]
    return Invoice(billing_id=ref, number=f"INV-{erp_id}", customer_id="c1", currency=currency, status=canonical,
                   due_on=due, subtotal=Money.of(total, currency), tax=Money.zero(currency),
                   total=Money.of(total, currency), amount_paid=Money.of(paid, currency),
                   amount_due=Money(amount=t - p if status == "AUTHORISED" else Decimal(0), currency=currency),
                   metadata={"erp_invoice_id": erp_id, "erp_status": status})


def payment(erp_id: str, on: str, amount: str, ref: str = "", currency: str = "USD") -> ErpPayment:
    return ErpPayment(erp_id=erp_id, reference=ref, erp_invoice_id=on, amount=Money.of(amount, currency))


def kinds(data: Receivables) -> set[tuple[str, str]]:
    findings, _ = compare_receivables("US01", data, tolerance=TOL, systems=SYSTEMS)
    return {(f.kind.value, f.key.rsplit(":", 1)[-1]) for f in findings}


def test_compare_receivables_clean_books_give_no_findings_and_matching_totals() -> None:
    data = Receivables(billing_invoices=[billing("in_1", "100.00", paid="100.00", status=InvoiceStatus.PAID,
                                                 charges=["ch_1"]), billing("in_2", "50.00")],
                       erp_invoices=[erp("x1", "in_1", "100.00", paid="100.00", status="PAID"),
                                     erp("x2", "in_2", "50.00")],
                       erp_payments=[payment("p1", "x1", "100.00", "ch_1")])
    findings, [totals] = compare_receivables("US01", data, tolerance=TOL, systems=SYSTEMS)
    assert findings == []
    assert (totals.billing_invoiced, totals.erp_invoiced, totals.billing_paid, totals.erp_paid) == (
        "150.00", "150.00", "100.00", "100.00")


def test_compare_receivables_missing_in_erp_offers_the_ledger_repost() -> None:
    findings, _ = compare_receivables("US01", Receivables(billing_invoices=[billing("in_1", "10.00")]), tolerance=TOL,
                                      systems=SYSTEMS)
    [gap] = findings
    assert gap.kind is FindingKind.MISSING_IN_ERP and gap.severity is Severity.HIGH
    assert gap.refs == ["stripe:invoice:in_1", "stripe:customer:cus_1"]
    assert gap.repair == "starter.py repost ledger-stripe-cus_1 --invoice in_1"


def test_compare_receivables_orphan_in_erp_is_found_the_other_way() -> None:
    data = Receivables(erp_invoices=[erp("x9", "in_unknown", "75.00"), erp("x8", "", "5.00"),
                                     erp("x7", "in_gone", "1.00", status="VOIDED")])
    findings, [totals] = compare_receivables("US01", data, tolerance=TOL, systems=SYSTEMS)
    assert {(f.kind.value, f.erp_id) for f in findings} == {("orphan_in_erp", "x9"), ("orphan_in_erp", "x8")}
    assert totals.erp_invoiced == "80.00" and totals.billing_invoiced == "0"


def test_compare_receivables_duplicate_erp_documents_are_one_finding_naming_both() -> None:
    data = Receivables(billing_invoices=[billing("in_1", "10.00")],
                       erp_invoices=[erp("x1", "in_1", "10.00"), erp("x2", "in_1", "10.00"),
                                     erp("x0", "in_1", "10.00", status="VOIDED")])
    findings, [totals] = compare_receivables("US01", data, tolerance=TOL, systems=SYSTEMS)
    [dup] = findings
    assert dup.kind is FindingKind.DUPLICATE_IN_ERP and dup.erp_id == "x1,x2"
    assert "xero:invoice:x1" in dup.refs and "xero:invoice:x2" in dup.refs
    assert totals.erp_invoiced == "20.00"  # both posted documents count in the ERP's totals


def test_compare_receivables_amount_within_rounding_is_not_a_mismatch_beyond_it_is() -> None:
    assert kinds(Receivables(billing_invoices=[billing("in_1", "10.00")],
                             erp_invoices=[erp("x1", "in_1", "10.01")])) == set()
    assert kinds(Receivables(billing_invoices=[billing("in_1", "10.00")],
                             erp_invoices=[erp("x1", "in_1", "10.02")])) == {("amount_mismatch", "in_1")}
    assert tolerance_for("JPY", TOL) == Decimal(1) and tolerance_for("USD", TOL) == TOL
    assert kinds(Receivables(billing_invoices=[billing("in_1", "1000", currency="JPY")],
                             erp_invoices=[erp("x1", "in_1", "1001", currency="JPY")])) == set()


def test_compare_receivables_currency_status_and_due_date_mismatches() -> None:
    assert kinds(Receivables(billing_invoices=[billing("in_1", "10.00")],
                             erp_invoices=[erp("x1", "in_1", "10.00", currency="EUR")])) == {
        ("currency_mismatch", "in_1")}
    assert kinds(Receivables(billing_invoices=[billing("in_1", "10.00", status=InvoiceStatus.VOID)],
                             erp_invoices=[erp("x1", "in_1", "10.00")])) == {("status_mismatch", "in_1")}
    assert kinds(Receivables(billing_invoices=[billing("in_1", "10.00", status=InvoiceStatus.UNCOLLECTIBLE)],
                             erp_invoices=[erp("x1", "in_1", "10.00")])) == {("status_mismatch", "in_1")}
    assert kinds(Receivables(billing_invoices=[billing("in_1", "10.00")],
                             erp_invoices=[erp("x1", "in_1", "10.00", due=date(2026, 12, 30))])) == {
        ("due_date_mismatch", "in_1")}


def test_compare_receivables_payments_on_one_side_only() -> None:
    paid = billing("in_1", "10.00", paid="10.00", status=InvoiceStatus.PAID, charges=["ch_1"])
    findings, _ = compare_receivables("US01", Receivables(billing_invoices=[paid],
                                                          erp_invoices=[erp("x1", "in_1", "10.00")]), tolerance=TOL,
                                    systems=SYSTEMS)
    [gap] = findings
    assert gap.kind is FindingKind.PAYMENT_MISSING_IN_ERP
    assert gap.repair == "starter.py repost ledger-stripe-cus_1 --invoice in_1" and "stripe:payment:ch_1" in gap.refs
    assert kinds(Receivables(billing_invoices=[billing("in_1", "10.00")],
                             erp_invoices=[erp("x1", "in_1", "10.00", paid="4.00")],
                             erp_payments=[payment("p1", "x1", "4.00", "manual")])) == {
        ("payment_missing_in_billing", "in_1")}


def test_compare_receivables_payment_on_the_wrong_invoice_is_one_misallocation() -> None:
    data = Receivables(
        billing_invoices=[billing("in_1", "10.00", paid="10.00", status=InvoiceStatus.PAID, charges=["ch_1"]),
                          billing("in_2", "10.00")],
        erp_invoices=[erp("x1", "in_1", "10.00"), erp("x2", "in_2", "10.00", paid="10.00", status="PAID")],
        erp_payments=[payment("p1", "x2", "10.00", "ch_1")])
    findings, _ = compare_receivables("US01", data, tolerance=TOL, systems=SYSTEMS)
    [wrong] = findings
    assert wrong.kind is FindingKind.PAYMENT_MISALLOCATED and wrong.erp_id == "p1" and wrong.billing_id == "in_1"
    assert "xero:invoice:x2" in wrong.refs


def test_compare_receivables_credit_notes_on_one_side_only_and_no_crm_reference() -> None:
    data = Receivables(
        billing_invoices=[billing("in_1", "10.00", deal=None)],
        billing_credit_notes=[CreditNote(billing_id="cn_1", invoice_billing_id="in_1", amount=Money.of("2.00", "USD"))],
        erp_invoices=[erp("x1", "in_1", "10.00")],
        erp_credit_notes=[ErpCreditNote(erp_id="xc9", reference="cn_other", amount=Money.of("3.00", "USD")),
                          ErpCreditNote(erp_id="xc8", reference="cn_gone", amount=Money.of("3.00", "USD"),
                                        status="VOIDED")])
    assert kinds(data) == {("credit_note_missing_in_erp", "cn_1"), ("credit_note_missing_in_billing", "xc9"),
                           ("invoice_without_crm_reference", "in_1")}


# -- delivery ----------------------------------------------------------------------------------------------
def contract(record: str, deal: str | None, entity: str | None, value: str = "5000.00",
             model: BillingModel = BillingModel.FIXED_FEE) -> Contract:
    return Contract(clm_record_id=record, title=f"Contract {record}", counterparty="Acme",
                    status=ContractStatus.EXECUTED, deal_crm_id=deal, legal_entity=entity,
                    terms=ContractTerms(start_date=TODAY, total_value=Money.of(value, "USD"), billing_model=model))


def project(entity: str, code: str, budget: str = "5000.00", erp_id: str | None = None) -> EntityProject:
    return EntityProject(entity=entity, project=ErpProject(
        erp_id=erp_id or f"prj-{code}", code=code, name=code, erp_contact_id="c", erp_tenant_id=f"t-{entity}",
        budget=Money.of(budget, "USD")))


def delivery_kinds(entities: list[str], data: Delivery, *, unattributed: bool = True) -> set[tuple[str, str]]:
    return {(f.kind.value, f.key.rsplit(":", 1)[-1])
            for f in compare_delivery(entities, data, tolerance=TOL, systems=SYSTEMS, unattributed=unattributed)}


def test_compare_delivery_scoped_to_an_entity_ignores_other_entities_contracts() -> None:
    data = Delivery(contracts=[contract("r1", "d1", "US01")], projects=[project("US01", "P-d1-US01")],
                    billing={"P-d1-US01": ProjectBilling(billing_ids=["in_1"], invoiced=Money.of("5000.00", "USD"))})
    assert delivery_kinds(["US01"], data) == set()
    assert delivery_kinds(["EU01"], data) == set()  # the defect: US01 contracts reported for EU01
    assert delivery_kinds(["EU01"], Delivery(contracts=[contract("r2", "d2", "US01")])) == set()
    assert delivery_kinds(["US01"], Delivery(contracts=[contract("r2", "d2", "US01")])) == {
        ("contract_without_project", "r2")}
    assert delivery_kinds(["EU01"], Delivery(contracts=[contract("r3", "d3", None)]), unattributed=False) == set()


def test_compare_delivery_wrong_entity_no_contract_no_billing_and_value_mismatches() -> None:
    data = Delivery(
        contracts=[contract("r1", "d1", "US01"), contract("r2", "d2", "US01", value="8000.00"),
                   contract("r4", "d4", "US01", model=BillingModel.SUBSCRIPTION)],
        projects=[project("EU01", "P-d1-US01", erp_id="p1"),
                  project("US01", "P-d2-US01", budget="8000.00", erp_id="p2"),
                  project("US01", "P-d3-US01", erp_id="p3"), project("US01", "P-d4-US01", erp_id="p4")],
        billing={"P-d1-US01": ProjectBilling(billing_ids=["in_1"], invoiced=Money.of("5000.00", "USD")),
                 "P-d2-US01": ProjectBilling(billing_ids=["in_2"], invoiced=Money.of("5000.00", "USD")),
                 "P-d3-US01": ProjectBilling(billing_ids=["in_3"], invoiced=Money.of("5000.00", "USD"))})
    assert delivery_kinds(["US01", "EU01"], data) == {
        ("project_in_wrong_entity", "p1"), ("billing_schedule_mismatch", "r2"), ("project_without_contract", "p3"),
        ("project_without_billing", "p4")}
    amended = data.model_copy(update={"projects": [project("US01", "P-d2-US01", budget="5000.00", erp_id="p2")],
                                      "contracts": [contract("r2", "d2", "US01", value="8000.00")], "billing": {
                                          "P-d2-US01": ProjectBilling(invoiced=Money.of("8000.00", "USD"))}})
    assert delivery_kinds(["US01"], amended) == {("project_budget_mismatch", "r2")}


def _item(code: str, unit: str, quantity: int, interval: BillingInterval = BillingInterval.MONTH) -> BillingRecord:
    return BillingRecord(kind=BillingRecordKind.SUBSCRIPTION_ITEM, billing_id=f"si_{code}", product_code=code,
                         subscription_id="sub_1", unit_amount=Money.of(unit, "USD"), quantity=Decimal(quantity),
                         interval=interval)


def _rate(role: str, unit: str) -> BillingRecord:
    return BillingRecord(kind=BillingRecordKind.RATE, billing_id=f"price_{role}", product_code=role,
                         unit_amount=Money.of(unit, "USD"))


def _terms(model: BillingModel, **fields: object) -> ContractTerms:
    return ContractTerms(start_date=date(2027, 1, 1), end_date=date(2027, 12, 31), total_value=Money.of("1", "USD"),
                         billing_model=model, **fields)  # type: ignore[arg-type]


def test_schedule_mismatch_subscription_items_times_periods_over_the_term() -> None:
    seats = RecurringCharge(product_code="PRO", name="Seats", quantity=Decimal(20), unit_price=Money.of("45.00", "USD"))
    terms = _terms(BillingModel.SUBSCRIPTION, recurring=[seats])
    # 2027-01-01 .. 2027-12-31 monthly: 12 periods; 20 x 45.00 x 12 = 10800.00 on both sides
    assert periods_in_term(date(2027, 1, 1), date(2027, 12, 31), BillingInterval.MONTH) == 12
    assert schedule_mismatch(terms, [ProjectBilling(records=[_item("PRO", "45.00", 20)])], tolerance=TOL) is None
    # billing kept 18 seats: 18 x 45.00 x 12 = 9720.00 against 10800.00
    found = schedule_mismatch(terms, [ProjectBilling(records=[_item("PRO", "45.00", 18)])], tolerance=TOL)
    assert found is not None
    assert found[0] == "9720.00 recurring scheduled" and found[1] == "10800.00 recurring (USD) contract"
    assert "PRO 9720.00 vs 10800.00" in found[2] and "over the term" in found[2]
    # no subscription at all for the charge: 0 against 10800.00
    assert schedule_mismatch(terms, [ProjectBilling(records=[])], tolerance=TOL) is not None


def test_schedule_mismatch_retainer_quarterly() -> None:
    support = RecurringCharge(kind=BillingModel.RETAINER, product_code="RET", name="Support", quantity=Decimal(1),
                              unit_price=Money.of("2500.00", "USD"), interval=BillingInterval.QUARTER)
    terms = _terms(BillingModel.RETAINER, recurring=[support])
    # quarters starting 01-01, 04-01, 07-01, 10-01: 4 x 2500.00 = 10000.00
    ok = [ProjectBilling(records=[_item("RET", "2500.00", 1, BillingInterval.QUARTER)])]
    assert schedule_mismatch(terms, ok, tolerance=TOL) is None
    # billed monthly instead: 12 x 2500.00 = 30000.00 against 10000.00
    monthly = [ProjectBilling(records=[_item("RET", "2500.00", 1, BillingInterval.MONTH)])]
    found = schedule_mismatch(terms, monthly, tolerance=TOL)
    assert found is not None and "RET 30000.00 vs 10000.00" in found[2]


def test_schedule_mismatch_time_and_materials_checks_rates_not_a_total() -> None:
    terms = _terms(BillingModel.TIME_AND_MATERIALS, rate_card=[
        RateCardEntry(role="TM-A", hourly_rate=Money.of("150.00", "USD")),
        RateCardEntry(role="TM-B", hourly_rate=Money.of("210.00", "USD"))])
    assert schedule_mismatch(terms, [ProjectBilling(records=[_rate("TM-A", "150.00"), _rate("TM-B", "210.00")])],
                             tolerance=TOL) is None
    found = schedule_mismatch(terms, [ProjectBilling(records=[_rate("TM-A", "150.00"), _rate("TM-B", "200.00"),
                                                              _rate("TM-X", "99.00")])], tolerance=TOL)
    assert found is not None
    assert found[2] == ("time and materials has no fixed total, so its rates were checked: TM-B 200.00 vs 210.00; "
                        "TM-X billed at 99.00 but not in the contract")
    missing = schedule_mismatch(terms, [ProjectBilling(records=[_rate("TM-A", "150.00")])], tolerance=TOL)
    assert missing is not None and "TM-B has no rate (contract 210.00)" in missing[2]


def test_schedule_mismatch_fixed_fee_and_milestones_within_tolerance() -> None:
    terms = _terms(BillingModel.MILESTONE).model_copy(update={"total_value": Money.of("30000.00", "USD")})
    assert schedule_mismatch(terms, [ProjectBilling(invoiced=Money.of("30000.01", "USD"))], tolerance=TOL) is None
    found = schedule_mismatch(terms, [ProjectBilling(invoiced=Money.of("12000.00", "USD"))], tolerance=TOL)
    assert found == ("12000.00 scheduled", "30000.00 USD contract",
                     "one-off invoices total 12000.00, the contract 30000.00")


def test_compare_delivery_schedule_mismatch_for_a_subscription_contract() -> None:
    """The defect: a subscription contract's schedule was never checked (fixed fee and milestones only)."""
    seats = RecurringCharge(product_code="PRO", name="Seats", quantity=Decimal(20), unit_price=Money.of("45.00", "USD"))
    sub = contract("r5", "d5", "US01", model=BillingModel.SUBSCRIPTION)
    sub = sub.model_copy(update={"terms": _terms(BillingModel.SUBSCRIPTION, recurring=[seats])})
    data = Delivery(contracts=[sub], projects=[project("US01", "P-d5-US01", erp_id="p5")],
                    billing={"P-d5-US01": ProjectBilling(billing_ids=["sub_1"], recurring=True,
                                                         records=[_item("PRO", "45.00", 10)])})
    [mismatch] = compare_delivery(["US01"], data, tolerance=TOL, systems=SYSTEMS)
    assert (mismatch.kind.value, mismatch.clm_id, mismatch.billing_id) == ("billing_schedule_mismatch", "r5", "sub_1")
    assert "stripe:subscription:sub_1" in mismatch.refs


# -- CRM figures -------------------------------------------------------------------------------------------
def test_expected_figures_and_crm_comparison() -> None:
    invoices = [billing("in_1", "100.00", paid="100.00", status=InvoiceStatus.PAID),
                billing("in_2", "50.00", paid="10.00", due=date(2026, 11, 1)),
                billing("in_3", "70.00"), billing("in_4", "99.00", status=InvoiceStatus.VOID)]
    notes = [CreditNote(billing_id="cn_1", invoice_billing_id="in_1", amount=Money.of("5.00", "USD"))]
    [usd] = expected_figures(invoices, notes, today=TODAY).values()
    assert (usd.billed, usd.paid, usd.outstanding, usd.overdue, usd.credited) == (
        "220.00", "110.00", "110.00", "40.00", "5.00")
    same = Figures(currency="USD", billed="220", paid="110", outstanding="110", overdue="40", credited="5")
    assert compare_crm_figures("US01", "hubspot:company:1", {"USD": usd}, {"USD": same}, tolerance=TOL,
                               refs=[]) == []
    stale = same.model_copy(update={"paid": "100"})
    [wrong] = compare_crm_figures("US01", "hubspot:company:1", {"USD": usd}, {"USD": stale}, tolerance=TOL, refs=[])
    assert wrong.kind is FindingKind.CRM_FIGURES_MISMATCH and "paid USD: billing 110.00, CRM 100" in wrong.detail
    [unset] = compare_crm_figures("US01", "hubspot:deal:9", {"USD": usd}, {}, tolerance=TOL, refs=[])
    assert unset.key == "crm_figures_mismatch:US01:hubspot:deal:9" and "CRM unset" in unset.detail


def test_billing_change_stands_when_the_newest_event_carried_the_object() -> None:
    """A delta read trusts the newest event's copy of an object; only an event that merely names an invoice
    (an item added to a draft) makes the reconciliation read the invoice again."""
    from canonical.reconciliation import BillingChange

    named_only = BillingChange(object="invoice", id="in_1")
    assert not named_only.stands
    assert BillingChange(object="invoice", id="in_1", invoice=billing("in_1", "10.00")).stands
    assert BillingChange(object="invoice", id="in_1", deleted=True).stands
    assert BillingChange(object="customer", id="cus_1", company_id="7").stands
    assert not BillingChange(object="credit_note", id="cn_1").stands


# -- issue 24: findings that tell the truth ------------------------------------------------------------------
def test_compare_receivables_recognises_the_integrations_own_write_off_credit_note() -> None:
    # billing wrote in_1 off with 60.00 of 100.00 owed; the ledger settled it in the ERP with its own credit note
    written_off = billing("in_1", "100.00", paid="40.00", status=InvoiceStatus.UNCOLLECTIBLE, charges=["ch_1"])
    data = Receivables(billing_invoices=[written_off],
                       erp_invoices=[erp("x1", "in_1", "100.00", paid="40.00", status="PAID")],
                       erp_payments=[payment("p1", "x1", "40.00", "ch_1")],
                       erp_credit_notes=[ErpCreditNote(erp_id="xc1", reference=write_off_credit_note_id("in_1"),
                                                       amount=Money.of("60.00", "USD"), erp_invoice_ids=["x1"])])
    assert kinds(data) == set()
    # the same write-off on an invoice billing holds as paid is no longer ours to keep: one finding naming both
    paid = billing("in_1", "100.00", paid="100.00", status=InvoiceStatus.PAID, charges=["ch_1"])
    findings, _ = compare_receivables("US01", data.model_copy(update={
        "billing_invoices": [paid], "erp_payments": [payment("p1", "x1", "40.00", "ch_1"),
                                                     payment("p2", "x1", "60.00", "ch_2")]}),
        tolerance=TOL, systems=SYSTEMS)
    assert [(f.kind, f.billing_id) for f in findings if f.erp_id == "xc1"] == [
        (FindingKind.CREDIT_NOTE_MISMATCH, "in_1")]
    # a write-off of an invoice this entity's billing does not hold is no write-off of ours to expect
    stray = Receivables(erp_credit_notes=[ErpCreditNote(erp_id="xc2", reference=write_off_credit_note_id("in_9"),
                                                        amount=Money.of("5.00", "USD"))])
    assert kinds(stray) == {("credit_note_missing_in_billing", "xc2")}


def test_compare_receivables_compares_credit_note_amount_and_allocation() -> None:
    note = CreditNote(billing_id="cn_1", invoice_billing_id="in_1", amount=Money.of("20.00", "USD"))
    base = Receivables(billing_invoices=[billing("in_1", "100.00").model_copy(
                           update={"amount_due": Money.of("80.00", "USD")}), billing("in_2", "50.00")],
                       billing_credit_notes=[note],
                       erp_invoices=[erp("x1", "in_1", "100.00").model_copy(
                           update={"amount_due": Money.of("80.00", "USD")}), erp("x2", "in_2", "50.00")])
    right = ErpCreditNote(erp_id="xc1", reference="cn_1", amount=Money.of("20.00", "USD"), erp_invoice_ids=["x1"])
    assert kinds(base.model_copy(update={"erp_credit_notes": [right]})) == set()
    wrong_amount = right.model_copy(update={"amount": Money.of("2.00", "USD")})
    findings, _ = compare_receivables("US01", base.model_copy(update={"erp_credit_notes": [wrong_amount]}),
                                      tolerance=TOL, systems=SYSTEMS)
    [mismatch] = findings
    assert mismatch.kind is FindingKind.CREDIT_NOTE_MISMATCH and mismatch.key.endswith(":cn_1")
    assert mismatch.billing_amount == "20.00 USD" and mismatch.erp_amount == "2.00 USD"
    assert "stripe:credit_note:cn_1" in mismatch.refs and "xero:credit_note:xc1" in mismatch.refs
    on_the_other = right.model_copy(update={"erp_invoice_ids": ["x2"]})
    findings, _ = compare_receivables("US01", base.model_copy(update={"erp_credit_notes": [on_the_other]}),
                                      tolerance=TOL, systems=SYSTEMS)
    assert [(f.kind, f.key.rsplit(":", 1)[-1]) for f in findings] == [(FindingKind.CREDIT_NOTE_MISMATCH, "cn_1")]
    assert "xero:invoice:x2" in findings[0].refs and "allocated" in findings[0].detail


def test_compare_receivables_compares_amount_due_paid_status_subtotal_and_tax() -> None:
    inv = billing("in_1", "110.00").model_copy(update={"subtotal": Money.of("100.00", "USD"),
                                                       "tax": Money.of("10.00", "USD")})
    same = erp("x1", "in_1", "110.00").model_copy(update={"subtotal": Money.of("100.00", "USD"),
                                                         "tax": Money.of("10.00", "USD")})
    assert kinds(Receivables(billing_invoices=[inv], erp_invoices=[same])) == set()
    # same total, the tax booked as revenue
    no_tax = same.model_copy(update={"subtotal": Money.of("110.00", "USD"), "tax": Money.zero("USD")})
    findings, _ = compare_receivables("US01", Receivables(billing_invoices=[inv], erp_invoices=[no_tax]),
                                      tolerance=TOL, systems=SYSTEMS)
    [split] = findings
    assert split.kind is FindingKind.AMOUNT_MISMATCH and "tax billing 10.00, ERP 0" in split.detail
    assert split.billing_amount == "100.00 + 10.00 tax USD" and split.erp_amount == "110.00 + 0.00 tax USD"
    # an invoice-level discount: billing's subtotal is before it, the ERP's after it; the same net and tax agree
    discounted = inv.model_copy(update={"subtotal": Money.of("120.00", "USD")})
    assert kinds(Receivables(billing_invoices=[discounted], erp_invoices=[same])) == set()
    # payments agree, but the ERP shows the invoice settled (a hand-made credit or paid flag): amount due differs
    settled = same.model_copy(update={"amount_due": Money.zero("USD"), "status": InvoiceStatus.PAID,
                                      "metadata": {**same.metadata, "erp_status": "PAID"}})
    findings, _ = compare_receivables("US01", Receivables(billing_invoices=[inv], erp_invoices=[settled]),
                                      tolerance=TOL, systems=SYSTEMS)
    [due] = findings
    assert due.kind is FindingKind.STATUS_MISMATCH and due.billing_amount == "open 110.00 USD due"
    assert due.erp_amount == "PAID 0.00 USD due"


def test_compare_receivables_void_done_only_in_the_erp_names_both_sides_and_no_repost() -> None:
    data = Receivables(billing_invoices=[billing("in_1", "10.00")],
                       erp_invoices=[erp("x1", "in_1", "10.00", status="VOIDED")])
    findings, _ = compare_receivables("US01", data, tolerance=TOL, systems=SYSTEMS)
    [void] = findings
    assert void.kind is FindingKind.STATUS_MISMATCH and void.erp_id == "x1" and void.billing_id == "in_1"
    assert void.refs[:2] == ["stripe:invoice:in_1", "xero:invoice:x1"]
    assert "repost" not in void.repair and "void" in void.repair


def test_compare_receivables_a_second_copy_of_a_payment_on_the_wrong_invoice_blames_that_invoice_only() -> None:
    # the ledger recorded ch_1 on in_1's ERP invoice; someone applied it again, by hand, to in_2's
    data = Receivables(
        billing_invoices=[billing("in_1", "10.00", paid="10.00", status=InvoiceStatus.PAID, charges=["ch_1"]),
                          billing("in_2", "10.00")],
        erp_invoices=[erp("x1", "in_1", "10.00", paid="10.00", status="PAID"),
                      erp("x2", "in_2", "10.00", paid="10.00", status="PAID")],
        erp_payments=[payment("p1", "x1", "10.00", "ch_1"), payment("p2", "x2", "10.00", "ch_1")])
    findings, _ = compare_receivables("US01", data, tolerance=TOL, systems=SYSTEMS)
    [wrong] = findings
    assert wrong.kind is FindingKind.PAYMENT_MISALLOCATED and wrong.erp_id == "p2"
    assert "delete payment p2" in wrong.repair and "delete payment p1" not in wrong.repair


def test_compare_unroutable_reports_invoices_no_entity_holds() -> None:
    lost = billing("in_9", "10.00").model_copy(update={"legal_entity": None})
    elsewhere = billing("in_8", "10.00").model_copy(update={"legal_entity": "ZZ99"})
    draft = billing("in_7", "10.00", status=InvoiceStatus.DRAFT).model_copy(update={"legal_entity": None})
    findings = compare_unroutable([lost, elsewhere, draft, billing("in_1", "1.00")], known_entities={"US01"},
                                  entity_of=lambda i: i.legal_entity or "", systems=SYSTEMS)
    assert {(f.kind, f.billing_id) for f in findings} == {(FindingKind.UNROUTABLE_INVOICE, "in_9"),
                                                          (FindingKind.UNROUTABLE_INVOICE, "in_8")}
    assert all(f.refs[0].startswith("stripe:invoice:") and "repost" in f.repair for f in findings)


# -- issue 24's month-end book: a void after a part payment ---------------------------------------------------
def test_compare_receivables_void_after_part_payment_closed_by_the_ledgers_credit_is_no_finding() -> None:
    # billing voided in_1 (200.00) after 50.00 was paid; the ledger kept the payment applied in the ERP and
    # credited the unpaid 150.00 with its own closing credit note: the ERP invoice is settled, nothing is due
    voided = billing("in_1", "200.00", paid="50.00", status=InvoiceStatus.VOID, charges=["ch_1"])
    closing = ErpCreditNote(erp_id="xc1", reference=closing_credit_note_id("in_1", written_off=False),
                            amount=Money.of("150.00", "USD"), erp_invoice_ids=["x1"])
    data = Receivables(billing_invoices=[voided], erp_invoices=[erp("x1", "in_1", "200.00", paid="50.00",
                                                                    status="PAID")],
                       erp_payments=[payment("p1", "x1", "50.00", "ch_1")], erp_credit_notes=[closing])
    assert kinds(data) == set()
    # the ERP invoice still owing something is live against a void: a finding
    owing = erp("x1", "in_1", "200.00", paid="50.00")
    assert kinds(data.model_copy(update={"erp_invoices": [owing], "erp_credit_notes": []})) == {
        ("status_mismatch", "in_1")}


def test_expected_figures_count_the_cash_kept_on_an_invoice_voided_after_part_payment() -> None:
    # the 50.00 received stays received (the ledger keeps it applied); the voided invoice is billed no more
    invoices = [billing("in_1", "100.00", paid="100.00", status=InvoiceStatus.PAID),
                billing("in_2", "200.00", paid="50.00", status=InvoiceStatus.VOID)]
    [usd] = expected_figures(invoices, [], today=TODAY).values()
    assert tuple(Decimal(str(v)) for v in (usd.billed, usd.paid, usd.outstanding, usd.credited)) == (
        Decimal("100.00"), Decimal("150.00"), 0, 0)
