"""The KPIs against figures computed by hand from one seeded scenario (every expected number is worked out in
the comment beside it, never by the code under test)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from canonical.billing import BillingScheduleKind, InvoiceStatus
from canonical.contract import ContractTerms, Milestone, RateCardEntry, RecurringCharge
from canonical.deal import BillingInterval, BillingModel
from canonical.kpis import (
    AmendmentFacts,
    DealFacts,
    DeliveryFacts,
    InvoiceFacts,
    ScheduledBilling,
    compute_kpis,
    contract_billing_items,
    dso_days,
    invoice_aligned,
    needed_person,
    percentile,
    with_amended_terms,
)
from canonical.ledger import ErpWriteKind, LedgerInvoice, PendingErpWrite, figures_by_currency
from canonical.money import Money

TODAY = date(2026, 11, 30)
WINDOW = 90  # window starts 2026-09-01 (exclusive)
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def one_off(entity: str, amount: str, on: date, currency: str = "USD") -> ScheduledBilling:
    return ScheduledBilling(legal_entity=entity, kind=BillingScheduleKind.FIXED_FEE, currency=currency,
                            amount=Money.of(amount, currency), bill_on=on)


def monthly(entity: str, amount: str, start: date, until: date | None, currency: str = "USD") -> ScheduledBilling:
    return ScheduledBilling(legal_entity=entity, kind=BillingScheduleKind.SUBSCRIPTION, currency=currency,
                            amount=Money.of(amount, currency), bill_on=start, interval=BillingInterval.MONTH,
                            until=until)


def deal(deal_id: str, entities: list[str], *, signed: float | None, project: float | None, billing: float | None,
         currency: str = "USD", exception: bool = False, reused: int = 0, created: int = 0,
         schedule: list[ScheduledBilling] | None = None) -> DealFacts:
    return DealFacts(deal_id=deal_id, legal_entities=entities, started_at=T0, schedule=schedule or [],
                     contract_signed_at=at(signed) if signed is not None else None,
                     project_created_at=at(project) if project is not None else None,
                     billing_live_at=at(billing) if billing is not None else None, contract_currency=currency,
                     entered_data_exception=exception, customers_reused=reused, customers_created=created)


DEALS = [
    # US01 signed->project: 300, 60, 120, 600 s; started->billing: 7800, 3600, 1800, 9000 s
    # d1's contract: a 1000.00 fixed fee on 2026-11-01 and a 300.00 one on 2026-11-10; d2's: 500.00 a month from
    # 2026-09-15 to 2027-09-14
    deal("d1", ["US01"], signed=7200, project=7500, billing=7800, reused=1, created=1,
         schedule=[one_off("US01", "1000.00", date(2026, 11, 1)), one_off("US01", "300.00", date(2026, 11, 10))]),
    deal("d2", ["US01"], signed=3000, project=3060, billing=3600, exception=True, created=2,
         schedule=[monthly("US01", "500.00", date(2026, 9, 15), date(2027, 9, 14))]),
    deal("d3", ["US01"], signed=1000, project=1120, billing=1800),
    deal("d4", ["US01", "EU01"], signed=8000, project=8600, billing=9000, reused=2, created=2),
    # EU01 also: signed->project 30 s, started->billing 1000 s
    # d5's contract: a milestone of 800.00 EUR billed on 2026-11-21
    deal("d5", ["EU01"], signed=500, project=530, billing=1000, currency="EUR",
         schedule=[one_off("EU01", "800.00", date(2026, 11, 21), "EUR")]),
    # still waiting for data: no entity, no milestones
    deal("d6", [], signed=None, project=None, billing=None, exception=True),
]


def invoice(invoice_id: str, entity: str, currency: str, total: str, *, paid: str = "0", credited: str = "0",
            status: InvoiceStatus = InvoiceStatus.OPEN, issued: date, deal_id: str | None) -> LedgerInvoice:
    return LedgerInvoice(invoice_id=invoice_id, currency=currency, legal_entity=entity, deal_id=deal_id,
                         total=Decimal(total), paid=Decimal(paid), credited=Decimal(credited),
                         credited_before_payment=Decimal(credited), status=status, issued_on=issued)


INVOICES = [
    # partial payment: 1000 - 400 = 600 outstanding, billed in the window
    InvoiceFacts(invoice=invoice("A", "US01", "USD", "1000", paid="400", issued=date(2026, 11, 1), deal_id="d1")),
    # credit note of 200 before any payment: 300 outstanding; the ERP refused it: needs a person
    InvoiceFacts(invoice=invoice("B", "US01", "USD", "500", credited="200", issued=date(2026, 10, 15),
                                 deal_id="d2"), needs_person=True),
    # paid in full, issued before the window: nothing outstanding, not in the window's billing; no deal reference
    InvoiceFacts(invoice=invoice("C", "US01", "USD", "2000", paid="2000", status=InvoiceStatus.PAID,
                                 issued=date(2026, 6, 1), deal_id=None)),
    # voided: neither owed nor billed
    InvoiceFacts(invoice=invoice("D", "US01", "USD", "300", status=InvoiceStatus.VOID, issued=date(2026, 11, 10),
                                 deal_id="d1")),
    # US01 in EUR, half paid, issued before the window; the deal's contract is in USD: not aligned
    InvoiceFacts(invoice=invoice("F", "US01", "EUR", "100", paid="50", issued=date(2026, 8, 15), deal_id="d1"),
                 needs_person=True),
    # EU01, unpaid, in the window
    InvoiceFacts(invoice=invoice("E", "EU01", "EUR", "800", issued=date(2026, 11, 20), deal_id="d5")),
]

AMENDMENTS = [
    AmendmentFacts(record_id="r1", sequence=1, legal_entities=["US01"], cycle_time_seconds=10),
    AmendmentFacts(record_id="r1", sequence=2, legal_entities=["US01"], cycle_time_seconds=40),
    AmendmentFacts(record_id="r2", sequence=1, legal_entities=["US01"], cycle_time_seconds=25),
]

DELIVERIES = [
    DeliveryFacts(vendor="hubspot", occurred_at=at(0), routed_at=at(2)),
    DeliveryFacts(vendor="hubspot", occurred_at=at(10), routed_at=at(14)),
    DeliveryFacts(vendor="stripe", occurred_at=at(20), routed_at=at(21)),
]


def report(entity: str | None = None):  # type: ignore[no-untyped-def]
    return compute_kpis(deals=DEALS, amendments=AMENDMENTS, invoices=INVOICES, deliveries=DELIVERIES, today=TODAY,
                        dso_window_days=WINDOW, entity=entity)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 90) == 5.0
    # n=4: p50 rank ceil(2)=2, p90 rank ceil(3.6)=4
    assert percentile([600, 60, 300, 120], 50) == 120
    assert percentile([600, 60, 300, 120], 90) == 600
    # n=10: p90 rank 9
    assert percentile(list(range(1, 11)), 90) == 9


def test_kpis_durations_per_entity() -> None:
    us, eu = report().entity("US01"), report().entity("EU01")
    assert us.deals == 4 and eu.deals == 2
    # US01 signed->project sorted [60, 120, 300, 600]: p50 = 120, p90 = 600
    assert (us.contract_signed_to_project.n, us.contract_signed_to_project.p50_seconds,
            us.contract_signed_to_project.p90_seconds) == (4, 120, 600)
    # US01 started->billing sorted [1800, 3600, 7800, 9000]: p50 = 3600, p90 = 9000
    assert (us.closed_won_to_billing_live.p50_seconds, us.closed_won_to_billing_live.p90_seconds) == (3600, 9000)
    # EU01 signed->project [30, 600]: p50 rank 1 = 30, p90 rank 2 = 600; started->billing [1000, 9000]
    assert (eu.contract_signed_to_project.p50_seconds, eu.contract_signed_to_project.p90_seconds) == (30, 600)
    assert (eu.closed_won_to_billing_live.p50_seconds, eu.closed_won_to_billing_live.p90_seconds) == (1000, 9000)
    # amendments US01 [10, 25, 40]: p50 rank 2 = 25, p90 rank 3 = 40; none in EU01
    assert (us.amendment_propagation.n, us.amendment_propagation.p50_seconds,
            us.amendment_propagation.p90_seconds) == (3, 25, 40)
    assert eu.amendment_propagation.n == 0 and eu.amendment_propagation.p50_seconds is None


def test_kpis_rates_per_entity_and_overall() -> None:
    r = report()
    us, eu, everything = r.entity("US01"), r.entity("EU01"), r.entity("all")
    # US01 invoices A B C D F: B and F need a person -> 2/5
    assert (us.billing_exceptions.count, us.billing_exceptions.total) == (2, 5)
    assert us.billing_exceptions.rate == pytest.approx(0.4)
    # aligned: A (1000.00 on 2026-11-01, d1's first fee) and B (500.00 on 2026-10-15, d2's second month);
    # C names no deal; D is d1's 300.00 fee on its date but voided; F is EUR, d1's contract USD -> 2/5
    assert (us.invoices_aligned.count, us.invoices_aligned.total) == (2, 5)
    # E: 800.00 EUR on 2026-11-20, d5's milestone is billed on 2026-11-21 -> 0/1
    assert (eu.invoices_aligned.count, eu.invoices_aligned.total) == (0, 1)
    # all: A, B of six -> 2/6
    assert (everything.invoices_aligned.count, everything.invoices_aligned.total) == (2, 6)
    # data exceptions: US01 d2 of d1..d4 -> 1/4; all entities d2, d6 of six deals -> 2/6
    assert (us.data_exceptions.count, us.data_exceptions.total) == (1, 4)
    assert (everything.data_exceptions.count, everything.data_exceptions.total) == (2, 6)
    # duplicates avoided US01: reused 1 + 0 + 0 + 2 = 3 of lookups 3 + created (1 + 2 + 0 + 2) = 8
    assert (us.duplicate_customers_avoided.count, us.duplicate_customers_avoided.total) == (3, 8)
    # an entity filter reports that entity only
    assert [e.legal_entity for e in report("EU01").entities] == ["EU01"]


def test_kpis_dso_per_entity_and_currency_with_partial_payments_and_credit_notes() -> None:
    r = report()
    us = {f.currency: f for f in r.entity("US01").dso}
    # USD outstanding: A 600 + B 300 + C 0 + D 0 = 900; billed after 2026-09-01: A 1000 + B 500 = 1500
    # DSO = 900 / 1500 x 90 = 54.0
    assert (Decimal(us["USD"].outstanding), Decimal(us["USD"].billed_in_window), us["USD"].dso_days) == (
        Decimal(900), Decimal(1500), "54.0")
    # US01 EUR: F owes 50, nothing billed in the window -> no DSO
    assert (Decimal(us["EUR"].outstanding), us["EUR"].dso_days) == (Decimal(50), None)
    # EU01 EUR: 800 / 800 x 90 = 90.0
    assert r.entity("EU01").dso[0].dso_days == "90.0"
    # all entities EUR: (800 + 50) / 800 x 90 = 95.625 -> 95.6
    assert {f.currency: f.dso_days for f in r.entity("all").dso}["EUR"] == "95.6"


def test_dso_days_formula() -> None:
    assert dso_days(Decimal(900), Decimal(1500), 90) == Decimal("54.0")
    assert dso_days(Decimal(0), Decimal(0), 90) == Decimal(0)
    assert dso_days(Decimal(10), Decimal(0), 90) is None


def test_account_figures_dso_matches_a_hand_computation() -> None:
    """The per-account DSO the ledger writes to the CRM: same scenario, same 54.0 days (was untested)."""
    entries = [i.invoice for i in INVOICES if i.invoice.currency == "USD"]
    figures = figures_by_currency(entries, [], today=TODAY, dso_window_days=WINDOW)
    assert len(figures) == 1
    assert figures[0].dso_days == "54.0"
    assert Decimal(figures[0].outstanding) == Decimal(900)


def test_webhook_to_workflow_latency() -> None:
    r = report()
    # all [2, 4, 1] sorted [1, 2, 4]: p50 rank 2 = 2, p90 rank 3 = 4; hubspot [2, 4]: p50 2, p90 4
    assert (r.webhook_to_workflow.n, r.webhook_to_workflow.p50_seconds, r.webhook_to_workflow.p90_seconds) == (3, 2, 4)
    assert r.webhook_to_workflow_by_vendor["hubspot"].p90_seconds == 4
    assert r.webhook_to_workflow_by_vendor["stripe"].p50_seconds == 1


def _inv(total: str, issued: date, *, entity: str = "US01", currency: str = "USD", deal_id: str | None = "x",
         status: InvoiceStatus = InvoiceStatus.OPEN) -> LedgerInvoice:
    return LedgerInvoice(invoice_id="in_x", currency=currency, legal_entity=entity, deal_id=deal_id,
                         total=Decimal(total), status=status, issued_on=issued)


def test_invoice_aligned_amount_currency_entity_and_date_of_a_scheduled_item() -> None:
    deals = {"x": DealFacts(deal_id="x", legal_entities=["US01", "EU01"], schedule=[
        one_off("US01", "1000.00", date(2027, 1, 1)),
        monthly("US01", "900.00", date(2027, 1, 31), date(2027, 4, 30)),
        ScheduledBilling(legal_entity="EU01", kind=BillingScheduleKind.TIME_AND_MATERIALS, currency="USD",
                         bill_on=date(2027, 2, 1), until=date(2027, 6, 30)),
    ])}

    def aligned(inv: LedgerInvoice) -> bool:
        return invoice_aligned(inv, deals, tolerance=Decimal("0.01"))

    assert aligned(_inv("1000.00", date(2027, 1, 1)))
    # the contract prices before tax: 19 % VAT on top still matches the item, the pre-tax amount is compared
    taxed = _inv("1190.00", date(2027, 1, 1)).model_copy(update={"subtotal": Decimal("1000.00")})
    assert aligned(taxed)
    assert not aligned(taxed.model_copy(update={"subtotal": Decimal("1190.00")}))
    assert aligned(_inv("1000.01", date(2027, 1, 1)))  # within the rounding tolerance
    assert not aligned(_inv("1000.02", date(2027, 1, 1)))  # beyond it
    assert not aligned(_inv("1000.00", date(2027, 1, 2)))  # a one-off item is billed on its day
    assert not aligned(_inv("1000.00", date(2027, 1, 1), currency="EUR"))
    assert not aligned(_inv("1000.00", date(2027, 1, 1), entity="EU01"))  # its entity is US01
    assert not aligned(_inv("1000.00", date(2027, 1, 1), deal_id=None))
    assert not aligned(_inv("1000.00", date(2027, 1, 1), status=InvoiceStatus.VOID))
    # monthly from 2027-01-31: periods start 01-31, 02-28, 03-28, 04-28 (day capped at 28, as provisioning
    # plans them); the term ends 04-30, so the last period is the one starting 04-28
    assert not aligned(_inv("900.00", date(2027, 1, 30)))  # before the first period
    assert aligned(_inv("900.00", date(2027, 2, 27)))  # in the first period
    assert aligned(_inv("900.00", date(2027, 5, 27)))  # in the period starting 04-28 (ends 05-28)
    assert not aligned(_inv("900.00", date(2027, 5, 28)))  # the next period starts after the term
    assert not aligned(_inv("1800.00", date(2027, 2, 27)))  # two months in one invoice is not the schedule
    # time and materials: no fixed amount, so any amount on or after the start, in its entity and currency
    assert aligned(_inv("4321.00", date(2027, 2, 1), entity="EU01"))
    assert not aligned(_inv("4321.00", date(2027, 1, 31), entity="EU01"))


def test_contract_billing_items_for_every_model() -> None:
    usd = "USD"
    terms = ContractTerms(
        start_date=date(2027, 1, 1), end_date=date(2027, 12, 31), total_value=Money.of("100000", usd),
        billing_model=BillingModel.SUBSCRIPTION, milestones=[
            Milestone(code="FF", name="Setup", amount=Money.of("9500.00", usd), requires_acceptance=False),
            Milestone(code="MS1", name="Design", amount=Money.of("12000.00", usd)),
            Milestone(code="MS2", name="Build", amount=Money.of("18000.00", usd), due_date=date(2027, 6, 1))],
        recurring=[
            RecurringCharge(product_code="PRO", name="Seats", quantity=Decimal(20), unit_price=Money.of("45.00", usd)),
            RecurringCharge(product_code="ADD", name="Add-on", quantity=Decimal(1), unit_price=Money.of("100.00", usd)),
            RecurringCharge(kind=BillingModel.RETAINER, product_code="RET", name="Support", quantity=Decimal(1),
                            unit_price=Money.of("2500.00", usd), interval=BillingInterval.QUARTER)],
        rate_card=[RateCardEntry(role="TM-A", hourly_rate=Money.of("150.00", usd)),
                   RateCardEntry(role="TM-B", hourly_rate=Money.of("210.00", usd))])
    items = contract_billing_items(terms, {"MS2": "EU01", "TM-B": "EU01"}, "US01")
    got = {(i.legal_entity, i.kind.value, str(i.amount.amount) if i.amount else None, i.bill_on,
            i.interval.value if i.interval else None) for i in items}
    assert got == {
        ("US01", "fixed_fee", "9500.00", date(2027, 1, 1), None),  # no due date: the start
        ("US01", "milestone", "12000.00", date(2027, 12, 31), None),  # needs acceptance, no due date: the end
        ("EU01", "milestone", "18000.00", date(2027, 6, 1), None),
        ("US01", "subscription", "1000.00", date(2027, 1, 1), "month"),  # 20 x 45.00 + 1 x 100.00 a month
        ("US01", "retainer", "2500.00", date(2027, 1, 1), "quarter"),
        ("US01", "time_and_materials", None, date(2027, 1, 1), None),
        ("EU01", "time_and_materials", None, date(2027, 1, 1), None),
    }
    assert len(items) == 7 and all(i.until == date(2027, 12, 31) for i in items if i.interval)


def test_needed_person_refusals_unroutable_unpaid_failures_and_findings() -> None:
    base = LedgerInvoice(invoice_id="in_1", currency="USD", total=Decimal(100))
    assert not needed_person(base)
    refused = base.model_copy(update={"erp_pending": [PendingErpWrite(kind=ErpWriteKind.INVOICE, step="post",
                                                                      problem="erp_rejected")]})
    assert needed_person(refused)
    unroutable = base.model_copy(update={"erp_pending": [PendingErpWrite(kind=ErpWriteKind.INVOICE, step="post",
                                                                         problem="unroutable_invoice")]})
    assert needed_person(unroutable)
    assert needed_person(base, problem="erp_rejected")
    # a payment that failed and is still unpaid needs someone; a failure a later charge made good does not
    assert needed_person(base.model_copy(update={"payment_failures": 1}))
    assert not needed_person(base.model_copy(update={"payment_failures": 2, "status": InvoiceStatus.PAID}))
    assert needed_person(base, finding=True)
    assert needed_person(base.model_copy(update={"needed_person": True, "status": InvoiceStatus.PAID}))
    assert not needed_person(base, problem="")


def test_invoices_aligned_with_the_contract_as_amended() -> None:
    """Signed for 20 seats x 45.00 a month from 2027-01-01; amended to 25 seats: an invoice of 900.00 (before the
    amendment) and one of 1125.00 (after) are both on the schedule; 1000.00 is on neither."""
    def seats(n: int) -> ContractTerms:
        return ContractTerms(start_date=date(2027, 1, 1), end_date=date(2027, 12, 31),
                             total_value=Money.of("900.00", "USD"), billing_model=BillingModel.SUBSCRIPTION,
                             recurring=[RecurringCharge(product_code="PRO", name="Seats", quantity=Decimal(n),
                                                        unit_price=Money.of("45.00", "USD"))])

    signed = DealFacts(deal_id="x", legal_entities=["US01"], entity_of_code={"PRO": "US01"},
                       schedule=contract_billing_items(seats(20), {"PRO": "US01"}, "US01"))
    amended = with_amended_terms(signed, seats(25))
    assert [i.amount.amount for i in amended.schedule if i.amount] == [Decimal("900.00"), Decimal("1125.00")]
    assert with_amended_terms(signed, seats(20)).schedule == signed.schedule  # nothing amended: nothing added
    deals = {"x": amended}
    assert invoice_aligned(_inv("900.00", date(2027, 2, 3)), deals)
    assert invoice_aligned(_inv("1125.00", date(2027, 6, 3)), deals)
    assert not invoice_aligned(_inv("1000.00", date(2027, 6, 3)), deals)
    assert not invoice_aligned(_inv("1125.00", date(2027, 6, 3)), {"x": signed})  # the defect: amended = misaligned


def test_keyed_customers_matched_count_as_duplicates_avoided_and_asked_matches_are_counted() -> None:
    """Three deals in US01: one linked to a contact finance keyed (after a person was asked), one reused our own
    contact, one created a new contact: 2 of 3 look-ups avoided a duplicate; 1 matched; 1 asked."""
    deals = [DealFacts(deal_id="m1", legal_entities=["US01"], customers_matched=1, customer_matches_asked=1),
             DealFacts(deal_id="m2", legal_entities=["US01"], customers_reused=1),
             DealFacts(deal_id="m3", legal_entities=["US01"], customers_created=1)]
    [us] = compute_kpis(deals=deals, amendments=[], invoices=[], deliveries=[], today=TODAY, dso_window_days=WINDOW,
                        entity="US01").entities
    assert (us.duplicate_customers_avoided.count, us.duplicate_customers_avoided.total) == (2, 3)
    assert (us.customers_matched, us.customer_matches_asked) == (1, 1)
