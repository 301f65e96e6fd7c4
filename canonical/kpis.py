"""The business KPIs the source documents ask for, as pure functions over facts gathered from the running
system (``observability/kpis.py`` gathers them; ``starter.py kpis`` prints them; the worker exports them).

Per legal entity, durations with p50 and p90 (nearest-rank percentiles: the value at rank ``ceil(p x n)``
of the sorted sample, so every figure is one observed value and can be computed by hand):

- contract signed -> project created; deal closed-won (the run's start) -> billing live;
- amendment executed -> propagated to every system (the amendment workflow's cycle time);
- billing exception rate: invoices that needed a person / all invoices, where an invoice needed a person when
  the ERP refused a write of it or it could not be routed to an entity, a payment failed and it is still not
  paid (a failure that a later charge made good needed nobody), or reconciliation raised a finding on it
  (:func:`needed_person`);
- invoices aligned to contract terms: the invoice matches a scheduled billing item of its deal's contract as
  signed or as amended (:func:`contract_billing_items`, :func:`with_amended_terms`): the same legal entity and
  currency, the amount within the rounding tolerance, issued on the item's date (one-off items) or in one of its
  periods (recurring items) / all invoices (:func:`invoice_aligned`). Time and materials has a rate card and no
  fixed amount: an invoice of such a contract is aligned on entity, currency and date (on or after the start)
  only;
- DSO per entity and currency: outstanding / billed in the window x the window (the ledger's formula, see
  :func:`dso_days`), over one window whatever ``since`` the other KPIs cover: every invoice still owed,
  however old, and every invoice issued in the last ``dso_window_days``;
- webhook-to-workflow latency: the vendor's event time -> Temporal accepted the start or signal;
- data-quality rates: deals that entered a data exception / all deals; duplicate customers avoided
  (an existing ERP or billing customer found instead of a new one created) / all customer look-ups.

No connector, Temporal or SQL code here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field

from canonical.billing import BillingScheduleKind, InvoiceStatus
from canonical.contract import ContractTerms
from canonical.deal import BillingInterval, BillingModel
from canonical.ledger import LedgerInvoice
from canonical.money import Money
from canonical.provisioning import add_period
from canonical.reconciliation import differs, tolerance_for

ALL_ENTITIES = "all"


class ScheduledBilling(BaseModel):
    """One item of a contract's billing schedule in one legal entity: a one-off amount on a date, an amount per
    period from ``bill_on`` (``interval`` set) until ``until``, or a rate card (``amount`` None)."""

    legal_entity: str
    kind: BillingScheduleKind
    currency: str
    amount: Money | None = None
    bill_on: date
    interval: BillingInterval | None = None
    until: date | None = Field(default=None, description="the term's end (recurring and rate items)")


class DealFacts(BaseModel):
    """What one quote-to-cash run tells the KPIs (from its ``status`` query's milestones)."""

    deal_id: str
    legal_entities: list[str] = Field(default_factory=list, description="where it was provisioned (or routed)")
    started_at: datetime | None = Field(default=None, description="the deal reached closed-won / approval stage")
    contract_signed_at: datetime | None = None
    project_created_at: datetime | None = Field(default=None, description="the first ERP project created")
    billing_live_at: datetime | None = Field(default=None, description="the last billing schedule created")
    contract_currency: str | None = None
    schedule: list[ScheduledBilling] = Field(default_factory=list, description="the contract's billing schedule")
    entity_of_code: dict[str, str] = Field(default_factory=dict,
                                           description="product code -> the entity provisioned for it")
    entered_data_exception: bool = False
    customers_reused: int = Field(default=0, description="ERP/billing customers found instead of created")
    customers_created: int = 0
    customers_matched: int = Field(default=0, description="ERP contacts finance had keyed, linked instead of a "
                                                          "duplicate (by the matching rules or a person's pick)")
    customer_matches_asked: int = Field(default=0, description="ambiguous matches put to a person")


class AmendmentFacts(BaseModel):
    """One applied amendment and its propagation cycle time."""

    record_id: str
    sequence: int
    legal_entities: list[str] = Field(default_factory=list)
    executed_at: datetime | None = None
    cycle_time_seconds: float | None = None


class InvoiceFacts(BaseModel):
    """One billing invoice as the ledger knows it, and whether a person had to look at it (:func:`needed_person`)."""

    invoice: LedgerInvoice
    needs_person: bool = False


#: the ledger's problems on an invoice that only a person clears
PERSON_PROBLEMS = frozenset({"erp_rejected", "unroutable_invoice", "customer_not_found", "payment_failed"})


def needed_person(invoice: LedgerInvoice, *, problem: str | None = None, finding: bool = False) -> bool:
    """The invoice needed a person: the ERP refused a write of it or it could not be routed (now or ever:
    ``needed_person`` stays set after a re-post settled it; a pending ERP write with a problem; the ledger's
    problem on it), a payment failed and it is still unpaid, or reconciliation
    raised a finding on it (``finding``: any finding naming it, open, acknowledged or closed)."""
    if finding or invoice.needed_person or (problem or "") in PERSON_PROBLEMS:
        return True
    if any(w.problem in PERSON_PROBLEMS for w in invoice.erp_pending):
        return True
    return invoice.payment_failures > 0 and invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)


class DeliveryFacts(BaseModel):
    """One webhook event handed to Temporal: when the vendor says it happened, when Temporal had it."""

    vendor: str
    occurred_at: datetime
    routed_at: datetime


class Durations(BaseModel):
    """A sample of durations in seconds: how many, p50 and p90 (None when empty)."""

    n: int = 0
    p50_seconds: float | None = None
    p90_seconds: float | None = None


class Rate(BaseModel):
    """A count over a total; ``rate`` is None when the total is zero."""

    count: int = 0
    total: int = 0

    @property
    def rate(self) -> float | None:
        return self.count / self.total if self.total else None


class DsoFigure(BaseModel):
    currency: str
    outstanding: str
    billed_in_window: str
    dso_days: str | None = Field(default=None, description="None when nothing was billed in the window")


class EntityKpis(BaseModel):
    """Every KPI for one legal entity (``all``: every entity together)."""

    legal_entity: str
    deals: int = 0
    contract_signed_to_project: Durations = Field(default_factory=Durations)
    closed_won_to_billing_live: Durations = Field(default_factory=Durations)
    amendment_propagation: Durations = Field(default_factory=Durations)
    billing_exceptions: Rate = Field(default_factory=Rate)
    invoices_aligned: Rate = Field(default_factory=Rate)
    dso: list[DsoFigure] = Field(default_factory=list)
    data_exceptions: Rate = Field(default_factory=Rate)
    duplicate_customers_avoided: Rate = Field(default_factory=Rate)
    customers_matched: int = Field(default=0, description="records finance keyed by hand, linked not duplicated")
    customer_matches_asked: int = Field(default=0, description="ambiguous matches a person was asked to settle")


class KpiReport(BaseModel):
    """The report: per entity, all entities together, and the webhook latency (not per entity)."""

    as_of: date
    since: datetime | None = None
    dso_window_days: int
    entities: list[EntityKpis] = Field(default_factory=list)
    webhook_to_workflow: Durations = Field(default_factory=Durations)
    webhook_to_workflow_by_vendor: dict[str, Durations] = Field(default_factory=dict)

    def entity(self, code: str) -> EntityKpis:
        for kpis in self.entities:
            if kpis.legal_entity == code:
                return kpis
        raise KeyError(code)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the value at rank ``ceil(p/100 x n)`` of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def durations(values: Iterable[float]) -> Durations:
    sample = list(values)
    return Durations(n=len(sample), p50_seconds=percentile(sample, 50), p90_seconds=percentile(sample, 90))


def _between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def dso_days(outstanding: Decimal, billed_in_window: Decimal, window_days: int) -> Decimal | None:
    """Days sales outstanding = outstanding / billed in the window x the window's days, to 0.1 day.

    ``None`` when nothing was billed in the window (and something is owed); ``0`` when nothing is owed.
    """
    if billed_in_window > 0:
        return (outstanding / billed_in_window * window_days).quantize(Decimal("0.1"))
    return Decimal(0) if outstanding == 0 else None


def dso_by_currency(invoices: Iterable[LedgerInvoice], *, today: date, window_days: int) -> list[DsoFigure]:
    """DSO per currency over the invoices: outstanding (after payments and credit notes issued before payment)
    over the totals of the live invoices issued in the last ``window_days`` days (voided ones excluded)."""
    window_start = today - timedelta(days=window_days)
    by_currency: dict[str, tuple[Decimal, Decimal]] = {}
    for inv in invoices:
        outstanding, billed = by_currency.get(inv.currency, (Decimal(0), Decimal(0)))
        outstanding += inv.outstanding
        if inv.status is not InvoiceStatus.VOID and inv.issued_on and inv.issued_on > window_start:
            billed += inv.total
        by_currency[inv.currency] = (outstanding, billed)
    figures = []
    for currency, (outstanding, billed) in sorted(by_currency.items()):
        dso = dso_days(outstanding, billed, window_days)
        figures.append(DsoFigure(currency=currency, outstanding=str(outstanding), billed_in_window=str(billed),
                                 dso_days=str(dso) if dso is not None else None))
    return figures


def contract_billing_items(terms: ContractTerms, entity_of: dict[str, str], default_entity: str
                           ) -> list[ScheduledBilling]:
    """The billing schedule the executed terms give, per legal entity, by the rules provisioning follows
    (``canonical.provisioning``): a fixed fee on its due date (else the start), a milestone on its due date (else
    the end, else 90 days after the start), recurring charges of one entity, kind and interval together as one
    amount per period from the start, a rate card with no fixed amount. ``entity_of``: product code -> entity."""
    currency = terms.total_value.currency
    items: list[ScheduledBilling] = []
    for m in terms.milestones:
        if m.requires_acceptance:
            on = m.due_date or terms.end_date or terms.start_date + timedelta(days=90)
        else:
            on = m.due_date or terms.start_date
        items.append(ScheduledBilling(
            legal_entity=entity_of.get(m.code, default_entity), currency=currency, amount=m.amount, bill_on=on,
            kind=BillingScheduleKind.MILESTONE if m.requires_acceptance else BillingScheduleKind.FIXED_FEE))
    per_period: dict[tuple[str, BillingScheduleKind, BillingInterval], Money] = {}
    for c in terms.recurring:
        kind = BillingScheduleKind.RETAINER if c.kind is BillingModel.RETAINER else BillingScheduleKind.SUBSCRIPTION
        key = (entity_of.get(c.product_code, default_entity), kind, c.interval)
        amount = c.per_period()
        per_period[key] = per_period[key] + amount if key in per_period else amount
    for (entity, kind, interval), amount in per_period.items():
        items.append(ScheduledBilling(legal_entity=entity, kind=kind, currency=currency, amount=amount,
                                      bill_on=terms.start_date, interval=interval, until=terms.end_date))
    for entity in dict.fromkeys(entity_of.get(r.role, default_entity) for r in terms.rate_card):
        items.append(ScheduledBilling(legal_entity=entity, kind=BillingScheduleKind.TIME_AND_MATERIALS,
                                      currency=currency, bill_on=terms.start_date, until=terms.end_date))
    return items


def with_amended_terms(deal: DealFacts, terms: ContractTerms) -> DealFacts:
    """The deal with the schedule of its contract as amended added to the one signed: an invoice issued before
    the amendment is aligned with the signed schedule, one issued after with the amended one."""
    default = deal.legal_entities[0] if deal.legal_entities else ""
    if not default:
        return deal
    amended = [i for i in contract_billing_items(terms, deal.entity_of_code, default) if i not in deal.schedule]
    return deal.model_copy(update={"schedule": [*deal.schedule, *amended]})


def _on_schedule(item: ScheduledBilling, issued: date) -> bool:
    """The invoice's date is the item's: its day (one-off), within one of its periods (recurring), on or
    after the start (rates)."""
    if item.kind is BillingScheduleKind.TIME_AND_MATERIALS:
        return issued >= item.bill_on
    if item.interval is None:
        return issued == item.bill_on
    start = item.bill_on
    while start <= issued and (item.until is None or start <= item.until):
        following = add_period(start, item.interval)
        if issued < following:
            return True
        start = following
    return False


def invoice_aligned(invoice: LedgerInvoice, deals: dict[str, DealFacts], *,
                    tolerance: Decimal = Decimal("0.01")) -> bool:
    """The invoice matches a scheduled billing item of its deal's contract: entity, currency, amount (before tax,
    as the contract prices it, within the rounding tolerance; the total where the subtotal is unknown) and date
    (see :func:`_on_schedule`). A voided invoice is not aligned."""
    deal = deals.get(invoice.deal_id or "")
    if deal is None or invoice.issued_on is None or invoice.status is InvoiceStatus.VOID:
        return False
    tol = tolerance_for(invoice.currency, tolerance)
    for item in deal.schedule:
        if item.legal_entity != invoice.legal_entity or item.currency != invoice.currency:
            continue
        billed = invoice.subtotal if invoice.subtotal is not None else invoice.total
        if item.amount is not None and differs(item.amount.amount, billed, tol):
            continue
        if _on_schedule(item, invoice.issued_on):
            return True
    return False


def _entity_kpis(code: str, deals: list[DealFacts], amendments: list[AmendmentFacts], invoices: list[InvoiceFacts],
                 all_deals: dict[str, DealFacts], *, today: date, window_days: int, tolerance: Decimal,
                 since: date | None) -> EntityKpis:
    """``invoices`` are all the entity's invoices: DSO takes them all, the rates those issued since ``since``."""
    book = [i.invoice for i in invoices]
    if since is not None:
        invoices = [i for i in invoices if i.invoice.issued_on is None or i.invoice.issued_on >= since]
    matched = sum(d.customers_matched for d in deals)
    reused = sum(d.customers_reused for d in deals) + matched
    lookups = reused + sum(d.customers_created for d in deals)
    return EntityKpis(
        legal_entity=code, deals=len(deals),
        contract_signed_to_project=durations(
            v for d in deals if (v := _between(d.contract_signed_at, d.project_created_at)) is not None),
        closed_won_to_billing_live=durations(
            v for d in deals if (v := _between(d.started_at, d.billing_live_at)) is not None),
        amendment_propagation=durations(a.cycle_time_seconds for a in amendments if a.cycle_time_seconds is not None),
        billing_exceptions=Rate(count=sum(1 for i in invoices if i.needs_person), total=len(invoices)),
        invoices_aligned=Rate(count=sum(1 for i in invoices
                                        if invoice_aligned(i.invoice, all_deals, tolerance=tolerance)),
                              total=len(invoices)),
        dso=dso_by_currency(book, today=today, window_days=window_days),
        data_exceptions=Rate(count=sum(1 for d in deals if d.entered_data_exception), total=len(deals)),
        duplicate_customers_avoided=Rate(count=reused, total=lookups),
        customers_matched=matched, customer_matches_asked=sum(d.customer_matches_asked for d in deals),
    )


def compute_kpis(*, deals: Sequence[DealFacts], amendments: Sequence[AmendmentFacts],
                 invoices: Sequence[InvoiceFacts], deliveries: Sequence[DeliveryFacts], today: date,
                 dso_window_days: int, entity: str | None = None, since: datetime | None = None,
                 tolerance: Decimal = Decimal("0.01")) -> KpiReport:
    """Every KPI per legal entity (one entity when ``entity`` is given) and for all entities together.

    A deal or amendment spanning several entities counts in each; a deal with no entity yet (still loading,
    or in a data exception) counts only under ``all``. ``invoices`` are every invoice the ledgers hold: the
    rates count those issued since ``since``, DSO its own window over all of them.
    """
    cutoff = since.date() if since is not None else None
    by_id = {d.deal_id: d for d in deals}
    codes = sorted({e for d in deals for e in d.legal_entities} | {e for a in amendments for e in a.legal_entities}
                   | {i.invoice.legal_entity for i in invoices if i.invoice.legal_entity})
    if entity is not None:
        codes = [entity]
    report = KpiReport(as_of=today, since=since, dso_window_days=dso_window_days)
    for code in codes:
        report.entities.append(_entity_kpis(
            code, [d for d in deals if code in d.legal_entities], [a for a in amendments if code in a.legal_entities],
            [i for i in invoices if i.invoice.legal_entity == code], by_id, today=today, window_days=dso_window_days,
            tolerance=tolerance, since=cutoff))
    if entity is None:
        report.entities.append(_entity_kpis(ALL_ENTITIES, list(deals), list(amendments), list(invoices), by_id,
                                            today=today, window_days=dso_window_days, tolerance=tolerance,
                                            since=cutoff))
    report.webhook_to_workflow = durations(_between(d.occurred_at, d.routed_at) or 0.0 for d in deliveries)
    for vendor in sorted({d.vendor for d in deliveries}):
        report.webhook_to_workflow_by_vendor[vendor] = durations(
            _between(d.occurred_at, d.routed_at) or 0.0 for d in deliveries if d.vendor == vendor)
    return report


__all__ = ["ALL_ENTITIES", "PERSON_PROBLEMS", "AmendmentFacts", "DealFacts", "DeliveryFacts", "DsoFigure",
           "Durations", "EntityKpis", "InvoiceFacts", "KpiReport", "Rate", "ScheduledBilling", "compute_kpis",
           "contract_billing_items", "dso_by_currency", "dso_days", "durations", "invoice_aligned", "needed_person",
           "percentile", "with_amended_terms"]
